// Every stackalloc in this assembly is written before it is read, so the zeroing the JIT would
// otherwise do on each call (a memset per 16×16 transpose and per table build) is skipped.
[module: System.Runtime.CompilerServices.SkipLocalsInit]
