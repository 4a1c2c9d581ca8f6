"""Getting data in: the data contract, the validated loader, uploads, the demo generator and the database files."""
