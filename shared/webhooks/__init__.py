"""Webhooks and job events: what is sent, to where, signed how, retried when. No AWS here."""
