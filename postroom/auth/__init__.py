"""Authentication: SASL mechanisms, stored credentials, the SASL driver, throttling.

Modules: ``sasl`` (mechanisms and base64 helpers, sans-IO), ``scram`` (SCRAM-SHA-256),
``steps`` (the step values), ``passwords`` (argon2id and SCRAM credentials),
``saslprep`` (RFC 4013), ``authenticator`` (the ``Authenticator`` protocol and
``run_sasl``), ``throttle`` (failed-login delays and blocks per client network).
"""
