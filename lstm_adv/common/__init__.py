"""What every layer shares: the user-error exception and exit codes (`errors`), input checks
(`checks`) and small helpers (`utils`: seeded RNG streams, atomic writes, versions)."""
