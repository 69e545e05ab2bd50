#!/usr/bin/env bash
# set-identity.sh: this job's Entra app (AZURE_CLIENT_ID) becomes the stack's mailroom:clientId, so a plan
# signs in with the read-only app and only the apply job with the writing one; and an OIDC token given as a
# variable (GitLab id_tokens, Azure DevOps idToken: MAILROOM_OIDC_TOKEN) becomes AZURE_FEDERATED_TOKEN_FILE
# for every Azure SDK (mailroom, the blob store, Pulumi's azblob backend). On GitHub mailroom asks for the
# token itself. Without AZURE_CLIENT_ID (the local stack) nothing changes.
source "$(dirname "$0")/lib.sh"
if [ -z "${AZURE_CLIENT_ID:-}" ]; then echo "mailroom: no AZURE_CLIENT_ID, identity unchanged" >&2; exit 0; fi
stack_file="Pulumi.${MAILROOM_STACK:?MAILROOM_STACK names the stack}.yaml"
grep -q '^  mailroom:clientId:' "$stack_file" || { echo "mailroom: $stack_file has no mailroom:clientId" >&2; exit 1; }
sed -i "s|^  mailroom:clientId:.*|  mailroom:clientId: $AZURE_CLIENT_ID|" "$stack_file"
if [ -n "${MAILROOM_OIDC_TOKEN:-}" ]; then
  token_file=${RUNNER_TEMP:-${AGENT_TEMPDIRECTORY:-${CI_BUILDS_DIR:-/tmp}}}/mailroom-oidc-token
  (umask 077; printf '%s' "$MAILROOM_OIDC_TOKEN" > "$token_file")
  echo "AZURE_FEDERATED_TOKEN_FILE=$token_file" >> "${MAILROOM_ENV_FILE:-/dev/null}"
  export AZURE_FEDERATED_TOKEN_FILE=$token_file
fi
echo "mailroom: signing in as $AZURE_CLIENT_ID for stack ${MAILROOM_STACK}" >&2
