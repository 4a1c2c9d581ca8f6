"""What may be seen: small-cell suppression, who may see which sites, and the audit log."""
