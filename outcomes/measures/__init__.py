"""The statistics behind the measures, the Overview KPIs and published reference rates."""
