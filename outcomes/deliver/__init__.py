"""Sending the Monday view: the e-mailed digest, threshold alerts and the SMTP delivery with its record of what was sent."""
