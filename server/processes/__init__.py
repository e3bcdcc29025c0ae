"""Several serving processes on one port: reservation, forked workers, their supervisor."""
