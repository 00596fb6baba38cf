"""Authentication, authorisation and (later) PII, crypto, audit and retention."""
