namespace TerDiT.Serve;

/// <summary>
/// What the service accepts and how it batches. Past a limit a request is refused at once (400, 413 or 429), so
/// the service never holds more than <see cref="MaxPendingJobs"/> unfinished jobs and
/// <see cref="MaxRetainedJobs"/> finished ones.
/// </summary>
public sealed record ServeLimits
{
    /// <summary>Most images one forward pass carries (each guided image takes two rows of it, conditional and unconditional).</summary>
    public int BatchImages { get; init; } = 16;

    /// <summary>Most jobs whose images share the forward passes at once; 1 runs the jobs one at a time.</summary>
    public int MaxRunningJobs { get; init; } = int.MaxValue;

    /// <summary>Most accepted jobs not yet finished (queued or running); another request gets 429.</summary>
    public int MaxPendingJobs { get; init; } = 64;

    /// <summary>Most finished jobs kept with their images; the oldest is forgotten first.</summary>
    public int MaxRetainedJobs { get; init; } = 256;

    /// <summary>Most images one request may ask for (classes × per_class); more gets 413.</summary>
    public int MaxImagesPerRequest { get; init; } = 64;

    /// <summary>Most sampling steps a request may ask for (at most the schedule's 1000); more gets 400.</summary>
    public int MaxSteps { get; init; } = 1000;

    /// <summary>Largest request body in bytes; more gets 413.</summary>
    public int MaxBodyBytes { get; init; } = 16 * 1024;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first limit that is not positive (or steps above 1000).</summary>
    public ServeLimits Validate()
    {
        foreach (var (name, value) in new[] { ("batch images", BatchImages), ("running jobs", MaxRunningJobs), ("pending jobs", MaxPendingJobs),
                     ("retained jobs", MaxRetainedJobs), ("images per request", MaxImagesPerRequest), ("steps", MaxSteps), ("body bytes", MaxBodyBytes) })
            if (value <= 0) throw new ArgumentException($"the limit of {name} must be positive, not {value}");
        if (MaxSteps > 1000) throw new ArgumentException($"the limit of steps is at most 1000 (the schedule's length), not {MaxSteps}");
        return this;
    }
}
