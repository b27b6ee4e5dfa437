using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Diffusion;

namespace TerDiT.Serve;

/// <summary>
/// The one model a service holds: its configuration, class names, and one <see cref="Denoiser"/> per activation
/// mode it offers, all over the same weights. A backend plugs in by building one of these around its forward pass;
/// each denoiser must compute every row of a batch from that row alone (the runtime's forward does), which is what
/// lets requests share forward passes without changing each other's images. The service calls the denoisers
/// from one thread, one call at a time.
/// </summary>
public sealed class ServedModel : IDisposable
{
    readonly IDisposable? _owned;

    /// <param name="config">The model's configuration.</param>
    /// <param name="classNames">Names by label; null or empty gives the labels' numbers as names.</param>
    /// <param name="device">Where the forward runs, for display ("cpu").</param>
    /// <param name="denoisers">Forward pass by mode name ("exact", "a8"), at least one.</param>
    /// <param name="defaultMode">The mode of requests that name none; a key of <paramref name="denoisers"/>.</param>
    /// <param name="owned">Disposed with the model (e.g. the mapped weights file).</param>
    /// <param name="diffusion">The diffusion the model was trained for; defaults to <see cref="DiffusionProcess.For(TerDiTConfig, TditDiffusion?, bool)"/>(config).</param>
    public ServedModel(TerDiTConfig config, IReadOnlyList<string>? classNames, string device,
        IReadOnlyDictionary<string, Denoiser> denoisers, string defaultMode, IDisposable? owned = null, DiffusionProcess? diffusion = null)
    {
        Config = config.Validate();
        Diffusion = diffusion ?? DiffusionProcess.For(Config);
        ClassNames = classNames is { Count: > 0 } ? classNames : Enumerable.Range(0, config.NumClasses).Select(i => i.ToString()).ToArray();
        if (ClassNames.Count != config.NumClasses) throw new ArgumentException($"{ClassNames.Count} class names for {config.NumClasses} classes");
        if (denoisers.Count == 0) throw new ArgumentException("a served model needs at least one denoiser");
        if (!denoisers.ContainsKey(defaultMode)) throw new ArgumentException($"default mode '{defaultMode}' is not one of {string.Join(", ", denoisers.Keys)}");
        (Device, Denoisers, DefaultMode, _owned) = (device, denoisers, defaultMode, owned);
    }

    public TerDiTConfig Config { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public string Device { get; }
    public IReadOnlyDictionary<string, Denoiser> Denoisers { get; }
    public string DefaultMode { get; }

    /// <summary>The diffusion process requests are sampled over: schedule, variance, clipping.</summary>
    public DiffusionProcess Diffusion { get; }

    /// <summary>Samplers a request may name (<see cref="SamplerNames"/>).</summary>
    public static IReadOnlyList<string> Samplers => SamplerNames.All;

    /// <summary>A sampler for this model over the forward of <paramref name="mode"/>.</summary>
    public DiffusionSampler Sampler(string mode) =>
        new(Denoisers[mode], Config.InChannels, Config.InputSize, Diffusion, Config.NullClass);

    /// <summary>
    /// A packed model on the CPU runtime, validated (<see cref="TditFile.Open"/>) and mapped once, with one forward
    /// per <see cref="GemmMode"/> over the same mapped ternary weights.
    /// </summary>
    /// <exception cref="TditFormatException">The file is not a valid packed model.</exception>
    public static ServedModel LoadCpu(string path, GemmMode defaultMode, int? threads = null) =>
        Load(path, "cpu", defaultMode, (weights, mode) => new RuntimeModel(weights, RuntimeOptions(mode, threads)));

    /// <summary>
    /// A packed model, validated (<see cref="TditFile.Open"/>) and opened once, with one forward per
    /// <see cref="GemmMode"/> made by <paramref name="backend"/> over the file's weights (e.g. the CUDA backend's
    /// model). Models that are <see cref="IDisposable"/> are disposed with the served model, before the file.
    /// </summary>
    /// <param name="path">The packed .tdit model.</param>
    /// <param name="device">Where the forward runs, for display.</param>
    /// <param name="defaultMode">The mode of requests that name none.</param>
    /// <param name="backend">The model of one mode over the file's weights.</param>
    /// <exception cref="TditFormatException">The file is not a valid packed model.</exception>
    /// <exception cref="ArgumentException">The file holds a latent model.</exception>
    public static ServedModel Load(string path, string device, GemmMode defaultMode, Func<IWeightSource, GemmMode, IDenoiserModel> backend)
    {
        var file = TditFile.Open(path);
        var owned = new List<IDisposable>();
        try
        {
            if (file.Info.Latent is not null)
                throw new ArgumentException($"{path}: a latent model (its samples are VAE latents); the service serves pixel models only");
            var weights = new TditWeightSource(file);
            var diffusion = DiffusionProcess.For(file);
            var denoisers = new Dictionary<string, Denoiser>();
            foreach (var mode in Enum.GetValues<GemmMode>())
            {
                var model = backend(weights, mode);
                if (model is IDisposable disposable) owned.Add(disposable);
                denoisers[ModeName(mode)] = model.Forward;
            }
            owned.Add(file);
            return new ServedModel(file.Config, file.Info.Classes, device, denoisers, ModeName(defaultMode), new DisposeInOrder(owned), diffusion);
        }
        catch
        {
            new DisposeInOrder(owned).Dispose();
            file.Dispose();
            throw;
        }
    }

    /// <summary>One CPU forward per <see cref="GemmMode"/> over <paramref name="weights"/>.</summary>
    public static IReadOnlyDictionary<string, Denoiser> Cpu(IWeightSource weights, int? threads = null) =>
        Enum.GetValues<GemmMode>().ToDictionary(ModeName, mode => (Denoiser)new RuntimeModel(weights, RuntimeOptions(mode, threads)).Forward);

    static RuntimeOptions RuntimeOptions(GemmMode mode, int? threads) =>
        threads is int t ? new RuntimeOptions { Mode = mode, Threads = t } : new RuntimeOptions { Mode = mode };

    sealed class DisposeInOrder(IReadOnlyList<IDisposable> items) : IDisposable
    {
        public void Dispose()
        {
            foreach (var item in items) item.Dispose();
        }
    }

    /// <summary>"exact" or "a8", the names of <c>--mode</c>.</summary>
    public static string ModeName(GemmMode mode) => mode == GemmMode.A8 ? "a8" : "exact";

    public void Dispose() => _owned?.Dispose();
}
