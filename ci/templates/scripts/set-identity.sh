#!/usr/bin/env bash
# set-identity.sh: this job's Entra app (AZURE_CLIENT_ID) becomes the stack's mailroom:clientId, so a plan
# signs in with the read-only app and only the apply job with the writing one; and an OIDC token given as a
# variable (GitLab id_tokens, Azure DevOps idToken: MAILROOM_OIDC_TOKEN) becomes AZURE_FEDERATED_TOKEN_FILE
# for every Azure SDK (mailroom, the blob store, Pulumi's azblob backend); on GitHub the token is asked of
# the runner (id-token: write) and the file named in $GITHUB_ENV for the later steps. Sourced (GitLab,
# Azure DevOps) it exports the variable; run (GitHub) it writes $GITHUB_ENV. Without AZURE_CLIENT_ID (the
# local stack) nothing changes.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [ -z "${AZURE_CLIENT_ID:-}" ]; then
  echo "mailroom: no AZURE_CLIENT_ID, identity unchanged" >&2
  return 0 2>/dev/null || exit 0
fi
stack_file="Pulumi.${MAILROOM_STACK:?MAILROOM_STACK names the stack}.yaml"
grep -q '^  mailroom:clientId:' "$stack_file" || { echo "mailroom: $stack_file has no mailroom:clientId" >&2; exit 1; }
sed -i "s|^  mailroom:clientId:.*|  mailroom:clientId: $AZURE_CLIENT_ID|" "$stack_file"
if [ -z "${MAILROOM_OIDC_TOKEN:-}" ] && [ -n "${ACTIONS_ID_TOKEN_REQUEST_URL:-}" ]; then
  # GitHub's token for Entra's audience. It is short-lived: this step runs right before mailroom's.
  MAILROOM_OIDC_TOKEN=$(curl -fsS -H "Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" \
    "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=api://AzureADTokenExchange" | python3 -c 'import json,sys; print(json.load(sys.stdin)["value"])')
fi
if [ -n "${MAILROOM_OIDC_TOKEN:-}" ]; then
  token_file=${RUNNER_TEMP:-${AGENT_TEMPDIRECTORY:-${CI_BUILDS_DIR:-/tmp}}}/mailroom-oidc-token
  (umask 077; printf '%s' "$MAILROOM_OIDC_TOKEN" > "$token_file")
  echo "AZURE_FEDERATED_TOKEN_FILE=$token_file" >> "${GITHUB_ENV:-/dev/null}"
  export AZURE_FEDERATED_TOKEN_FILE=$token_file
fi
echo "mailroom: signing in as $AZURE_CLIENT_ID for stack ${MAILROOM_STACK}" >&2
