"""The transparency log: every published, withdrawn and finalized announcement (公示) as a leaf of
an RFC 9162 Merkle log with Ed25519-signed checkpoints (C2SP tlog-checkpoint), so anyone can
prove that what was announced was never rewritten. `verify.py` is the citizen's side of it
(`grantline-verify-notice`)."""
