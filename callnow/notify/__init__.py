"""Owner notices by e-mail: links, rendering, SMTP, and the outbox's sender."""
