"""Authentication: users, passwords, tokens, API keys, system users (PAM, shadow)."""
