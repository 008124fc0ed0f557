"""The outbox (e-mail, webhooks), its delivery, and the audit log."""
