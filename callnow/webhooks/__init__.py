"""Status webhooks: signing, retry timing and the sender worker."""
