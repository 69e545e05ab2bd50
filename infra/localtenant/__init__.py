r"""localtenant: a local Microsoft 365 tenant emulator for mailroom's tests and benchmarks.

One HTTP server (Starlette on uvicorn, state in SQLite) speaks the subset of the Exchange
Online admin API (``POST /adminapi/beta/{tenant}/InvokeCommand`` and ``$batch``), Microsoft
Graph v1.0 (users, mailboxSettings, ``$batch``, directoryAudits) and the Entra token
endpoint that mailroom uses, with fault injection (latency, 429s, 5xx, dropped
connections) and request metrics under ``/_emulator``. It never imports mailroom.

Try it with curl (an empty state is seeded with the shipped Contoso directory)::

    python -m localtenant serve --state /tmp/tenant.db --port 8765 &
    BASE=http://127.0.0.1:8765
    TOKEN=$(curl -s $BASE/contoso.onmicrosoft.com/oauth2/v2.0/token \
      -d grant_type=client_credentials -d client_id=demo -d client_secret=x \
      -d scope=https://outlook.office365.com/.default \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    EXO=$BASE/adminapi/beta/contoso.onmicrosoft.com/InvokeCommand

    curl -s -w '\n' $EXO -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
      -d '{"CmdletInput":{"CmdletName":"New-Mailbox","Parameters":{"Shared":true,
           "Name":"sales","DisplayName":"Sales","PrimarySmtpAddress":"sales@contoso.com"}}}'

    curl -s $EXO -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
      -d '{"CmdletInput":{"CmdletName":"Get-Mailbox","Parameters":{"Identity":"sales@contoso.com"}}}' \
      | python3 -m json.tool | grep -E '"(DisplayName|PrimarySmtpAddress|RecipientTypeDetails)"'

    curl -s -w '\n' $BASE/_emulator/metrics
"""

__version__ = "0.1.0"
