using System.Text.Json.Serialization;

namespace TerDiT.Serve;

/// <summary>Where a generation job is: queued → running → one of the three final states.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<GenerationState>))]
public enum GenerationState
{
    [JsonStringEnumMemberName("queued")] Queued,
    [JsonStringEnumMemberName("running")] Running,
    [JsonStringEnumMemberName("succeeded")] Succeeded,
    [JsonStringEnumMemberName("failed")] Failed,
    [JsonStringEnumMemberName("cancelled")] Cancelled,
}

/// <summary>
/// A validated request: <see cref="Classes"/> (labels, one grid row each) × <see cref="PerClass"/> images, image k of
/// the request (class-major: row k / PerClass) drawing the noise (<see cref="Seed"/>, k), as <c>terdit sample</c> does.
/// </summary>
public sealed record GenerationSettings(int[] Classes, int PerClass, int Steps, string Sampler, double Cfg, ulong Seed, string Mode)
{
    /// <summary>Images of the request: classes × per class.</summary>
    public int Images => Classes.Length * PerClass;

    /// <summary>The label of image k.</summary>
    public int LabelOf(int image) => Classes[image / PerClass];
}

/// <summary>
/// One job of the <see cref="GenerationEngine"/>. Its mutable fields are read and written only under the engine's lock;
/// <see cref="Changed"/> completes at every change and <see cref="Finished"/> once the job is final.
/// </summary>
sealed class Generation(string id, GenerationSettings settings, DateTimeOffset created)
{
    TaskCompletionSource _changed = NewSignal();
    readonly TaskCompletionSource _finished = NewSignal();

    public string Id { get; } = id;
    public GenerationSettings Settings { get; } = settings;
    public DateTimeOffset Created { get; } = created;
    public DateTimeOffset? Started { get; set; }
    public DateTimeOffset? Ended { get; set; }
    public GenerationState State { get; set; } = GenerationState.Queued;
    public string? Error { get; set; }

    /// <summary>Images handed to the sampler so far.</summary>
    public int Admitted { get; set; }
    /// <summary>Images in the engine's forward passes.</summary>
    public int Active { get; set; }
    public int ImagesDone { get; set; }
    /// <summary>Model steps done, summed over the images.</summary>
    public long ImageSteps { get; set; }
    public bool CancelRequested { get; set; }
    /// <summary>Clients reading the job's events.</summary>
    public int Watchers { get; set; }

    /// <summary>8-bit pixels (N, C, H, W) as images finish.</summary>
    public byte[]? Pixels { get; set; }
    public byte[]? GridPng { get; set; }
    public byte[][]? ImagePngs { get; set; }

    public bool IsFinal => State is GenerationState.Succeeded or GenerationState.Failed or GenerationState.Cancelled;

    /// <summary>Completes at the next change.</summary>
    public Task Changed => _changed.Task;

    /// <summary>Completes when the job is final.</summary>
    public Task Finished => _finished.Task;

    public void Notify()
    {
        var old = _changed;
        _changed = NewSignal();
        old.SetResult();
        if (IsFinal) _finished.TrySetResult();
    }

    static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
