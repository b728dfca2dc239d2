"""SASL server mechanisms, sans-IO (RFC 4422).

Theory of operation: a mechanism object is fed the client's decoded responses and
answers with one step at a time. It never checks a password itself: checking is
blocking work (argon2) and belongs to the shell, so the mechanism *asks* for it with
``VerifyPassword`` / ``LookupScram`` and is told the answer with ``password_result`` /
``scram_credentials``. The protocol engines (SMTP, IMAP, POP3) own the framing
(``334``, ``+``) and base64; this module sees raw bytes only.

Contract (implemented in this module):

    mech = new_mechanism("PLAIN")           # None for an unknown name
    step = mech.start(initial_response)     # bytes | None (None: no initial response)
    while True:
        match step:
            case Challenge(data): send data, step = mech.respond(client_bytes)
            case VerifyPassword(authcid, authzid, password):
                step = mech.password_result(user_or_None)
            case LookupScram(authcid, authzid):
                step = mech.scram_credentials(creds_or_None)
            case Success(user, final_data): done (final_data: bytes for SCRAM's server-final)
            case Failure(reason, code): done

A client cancel ("*") is handled by the protocol engine, not here.
"""
