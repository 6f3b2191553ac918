"""Client for the MailStore SPE Management API."""
