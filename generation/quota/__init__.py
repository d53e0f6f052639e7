"""The shared per-credential limiter: in this process, or in Redis for several workers."""
