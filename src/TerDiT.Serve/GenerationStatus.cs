namespace TerDiT.Serve;

/// <summary>A job as <c>GET /v1/generations/{id}</c> and its events show it.</summary>
/// <param name="Id">The job's id (32 hex digits).</param>
/// <param name="State">queued, running, succeeded, failed or cancelled.</param>
/// <param name="QueuePosition">Jobs ahead of it while queued (0: next); null otherwise.</param>
/// <param name="Progress">Steps done.</param>
/// <param name="Settings">The request as it runs, defaults and the drawn seed filled in.</param>
/// <param name="Created">When it was accepted.</param>
/// <param name="Started">When its first image entered a forward pass.</param>
/// <param name="Finished">When it ended.</param>
/// <param name="Error">Why it failed; null otherwise.</param>
/// <param name="Links">Where to find it, its events and (once succeeded) its images.</param>
public sealed record GenerationStatus(string Id, GenerationState State, int? QueuePosition, GenerationProgress Progress,
    GenerationSettingsView Settings, DateTimeOffset Created, DateTimeOffset? Started, DateTimeOffset? Finished, string? Error,
    GenerationLinks Links)
{
    internal static GenerationStatus Of(Generation job, ServedModel model, int? queuePosition)
    {
        var s = job.Settings;
        string self = $"/v1/generations/{job.Id}";
        bool done = job.State == GenerationState.Succeeded;
        return new GenerationStatus(job.Id, job.State, queuePosition,
            new GenerationProgress((int)(job.ImageSteps / s.Images), s.Steps, job.ImagesDone, s.Images),
            new GenerationSettingsView(s.Classes.Select(k => model.ClassNames[k]).ToArray(), s.Classes, s.PerClass, s.Steps, s.Sampler, s.Cfg, s.Seed, s.Mode),
            job.Created, job.Started, job.Ended, job.Error,
            new GenerationLinks(self, self + "/events", done ? self + "/image.png" : null,
                done ? Enumerable.Range(0, s.Images).Select(k => $"{self}/images/{k}.png").ToArray() : null));
    }
}

/// <param name="Step">Steps done, averaged over the images (all images of a job that fits one pass move together).</param>
/// <param name="Steps">Steps of each image.</param>
/// <param name="ImagesDone">Images finished.</param>
/// <param name="Images">Images of the job.</param>
public sealed record GenerationProgress(int Step, int Steps, int ImagesDone, int Images);

/// <param name="Classes">Class names, one grid row each.</param>
/// <param name="ClassIndices">Their labels.</param>
/// <param name="PerClass">Images per class.</param>
/// <param name="Steps">Sampling steps.</param>
/// <param name="Sampler">dpm++2m, ddim or ddpm.</param>
/// <param name="Cfg">Classifier-free guidance scale.</param>
/// <param name="Seed">Seed of the noise (image k draws (seed, k)).</param>
/// <param name="Mode">exact or a8.</param>
public sealed record GenerationSettingsView(string[] Classes, int[] ClassIndices, int PerClass, int Steps, string Sampler, double Cfg, ulong Seed, string Mode);

/// <param name="Self">This job.</param>
/// <param name="Events">Its server-sent events.</param>
/// <param name="Image">The grid PNG (one row per class), once succeeded.</param>
/// <param name="Images">One PNG per image in grid order, once succeeded.</param>
public sealed record GenerationLinks(string Self, string Events, string? Image, string[]? Images);

/// <summary>What <c>GET /v1/model</c> tells.</summary>
/// <param name="Name">The configuration's name.</param>
/// <param name="Config">The architecture (TerDiTConfig).</param>
/// <param name="Classes">Class names by label.</param>
/// <param name="Samplers">Samplers a request may name.</param>
/// <param name="Modes">Activation modes a request may name.</param>
/// <param name="Device">Where the forward runs.</param>
/// <param name="ImageSize">Height = width of an image in pixels.</param>
/// <param name="Defaults">Values of the fields a request leaves out (the seed is drawn at random).</param>
/// <param name="Limits">The service's limits.</param>
public sealed record ModelInfo(string Name, Runtime.Config.TerDiTConfig Config, IReadOnlyList<string> Classes, IReadOnlyList<string> Samplers,
    IReadOnlyList<string> Modes, string Device, int ImageSize, RequestDefaults Defaults, ServeLimits Limits);

/// <param name="PerClass">Images per class.</param>
/// <param name="Steps">Sampling steps.</param>
/// <param name="Sampler">dpm++2m, ddim or ddpm.</param>
/// <param name="Cfg">Classifier-free guidance scale.</param>
/// <param name="Mode">Activation mode.</param>
public sealed record RequestDefaults(int PerClass, int Steps, string Sampler, double Cfg, string Mode);
