"""The finaliser: ends notice periods (公示) that ran out with no revocation, and emits
`award.finalized` with its webhook deliveries."""
