"""Outcomes dashboard for residential and intensive outpatient addiction treatment."""
