using System.Diagnostics;
using TerDiT.Data;
using TerDiT.Distributed;
using TerDiT.Diffusion;
using TerDiT.Model;
using TerDiT.Runtime;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Training;

/// <summary>
/// Trains a <see cref="TerDiTModel"/> with DiT's diffusion loss: AdamW, global-norm gradient clipping,
/// EMA of the weights, metrics to RUN_DIR/metrics.jsonl and checkpoints to RUN_DIR/checkpoints.
/// Every random draw is a pure function of (seed, step) (see <see cref="Checkpoint"/>), so a run that is
/// stopped and resumed from a checkpoint ends with the same weights as one that was never stopped.
/// Step s: batch = <see cref="DataOrder.Batch"/>(s); from a CPU generator seeded <c>Seeds.Derive(seed, StepStream, s)</c>
/// draw, in this order, timesteps (N), label-dropout uniforms (N), noise (N, C, H, W).
/// Data parallel (a <see cref="ICommunicator"/> of W ranks): N = BatchSize is the global batch; every rank
/// draws all of it as above and keeps rows r, r+W, … (<see cref="DataSharding"/>), gradients are averaged
/// across ranks before clipping, so W ranks take exactly the steps of one process; only rank 0 writes
/// metrics and checkpoints.
/// </summary>
public sealed class Trainer : IDisposable
{
    readonly ITrainingSet data;
    readonly DataOrder order;
    readonly GaussianDiffusion diffusion;
    readonly FlatParameters flat;
    readonly AdamW optimizer;
    readonly Ema ema;
    readonly MetricsLog? metrics;          // rank 0 only
    readonly ICommunicator? communicator;  // null: one process
    readonly GradientBucketer? bucketer;
    readonly DataInfo dataInfo;
    readonly Device device;
    readonly ScalarType dtype;
    long lastSavedStep = -1;

    Trainer(TerDiTModel model, TrainOptions options, ITrainingSet data, string dataSpec, string runDir, Device? device, ScalarType dtype, long step,
        ICommunicator? communicator)
    {
        if (communicator is not null) DataSharding.PerRank(options.BatchSize, communicator.WorldSize);
        this.communicator = communicator;
        Model = model; Options = options; RunDir = runDir; Step = step;
        var process = DiffusionProcess.For(model.Config);
        diffusion = new GaussianDiffusion(process.Schedule, process.Variance);
        this.data = data; this.dtype = dtype;
        this.device = device ?? CPU;
        order = new DataOrder(options.Seed, data.Count, options.BatchSize);
        dataInfo = new DataInfo(dataSpec, data.Count, data.Latent);
        if (this.device.type != DeviceType.CPU || dtype != ScalarType.Float32) model.to(this.device, dtype);
        model.ComputeDType = options.Precision == TrainPrecision.Bf16 ? ScalarType.BFloat16 : null;
        communicator?.BroadcastFromRankZero(model);
        flat = new FlatParameters(model.named_parameters().Select(p => (p.name, p.parameter)));
        if (communicator is not null) bucketer = new GradientBucketer(flat.Grad, communicator);
        optimizer = new AdamW(flat, options.LearningRate, weightDecay: options.WeightDecay);
        ema = new Ema(flat, options.EmaDecay);
        if (!IsMain) return;
        Directory.CreateDirectory(Path.Combine(runDir, "checkpoints"));
        RemovedTemporaries = AtomicFile.RemoveStaleTemporaries(Path.Combine(runDir, "checkpoints"));
        metrics = new MetricsLog(MetricsPath, step);
    }

    public TerDiTModel Model { get; }
    public TrainOptions Options { get; }
    public string RunDir { get; }
    /// <summary>Optimizer steps completed.</summary>
    public long Step { get; private set; }
    public string MetricsPath => Path.Combine(RunDir, "metrics.jsonl");
    /// <summary>Why <see cref="Resume"/> passed over newer checkpoints (damaged ones), newest first; empty otherwise.</summary>
    public IReadOnlyList<string> SkippedCheckpoints { get; private set; } = [];
    /// <summary>Temporary checkpoint files of killed runs that the constructor deleted.</summary>
    public IReadOnlyList<string> RemovedTemporaries { get; private set; } = [];
    /// <summary>True unless this is a data-parallel rank other than 0 (which writes no files).</summary>
    public bool IsMain => communicator is null || communicator.Rank == 0;
    /// <summary>The EMA weights by parameter name (live tensors).</summary>
    public IEnumerable<(string Name, Tensor Value)> EmaWeights => ema.Weights();

    /// <summary>
    /// A new run in <paramref name="runDir"/>: the model initialised from <c>options.Seed</c>.
    /// Refuses a folder that already holds checkpoints (resume it, or choose another folder).
    /// <paramref name="dataSpec"/> names the data (e.g. "fashion-mnist" or a folder) for the checkpoints.
    /// </summary>
    public static Trainer Start(TerDiTConfig config, TrainOptions options, ITrainingSet data, string dataSpec, string runDir,
        Device? device = null, ScalarType dtype = ScalarType.Float32, ICommunicator? communicator = null)
    {
        options.Validate();
        CheckData(config, data);
        CheckMemory(config, options, device, communicator);
        var ckptDir = Path.Combine(runDir, "checkpoints");
        if (Directory.Exists(ckptDir) && Directory.EnumerateFiles(ckptDir, "step-*.ckpt").Any())
            throw new InvalidOperationException($"{runDir} already holds checkpoints; pass --resume to continue that run or choose another --out");
        var metricsPath = Path.Combine(runDir, "metrics.jsonl");
        if (File.Exists(metricsPath) && (communicator is null || communicator.Rank == 0)) File.Delete(metricsPath);
        return new Trainer(new TerDiTModel(config, (long)options.Seed), options, data, dataSpec, runDir, device, dtype, step: 0, communicator);
    }

    /// <summary>
    /// Continues the run in <paramref name="runDir"/> from its latest checkpoint up to <c>options.Steps</c>.
    /// The checkpoint's model config wins; <paramref name="config"/>, when given, must equal it; the optimisation
    /// options (batch, lr, weight decay, clip, EMA decay, seed) and the data size must equal the checkpoint's.
    /// </summary>
    public static Trainer Resume(string runDir, TrainOptions options, ITrainingSet data, string dataSpec, TerDiTConfig? config = null,
        Device? device = null, ScalarType dtype = ScalarType.Float32, ICommunicator? communicator = null)
    {
        options.Validate();
        using var ckpt = Checkpoint.LoadLatestValid(runDir, out var path, out var skipped);
        if (config is not null && config != ckpt.Config)
            throw new ArgumentException($"the model options ({config.ToJson()}) differ from the checkpoint's ({ckpt.Config.ToJson()}); leave out --preset to resume with the checkpoint's");
        if (ckpt.Options.OptimisationDifference(options) is { } diff) throw new ArgumentException($"cannot resume {path} with {diff}");
        if (ckpt.Data.Count != data.Count)
            throw new ArgumentException($"cannot resume {path}: it was trained on {ckpt.Data.Count} images of '{ckpt.Data.Spec}', the data now has {data.Count}");
        if (ckpt.Data.Latent != data.Latent)
            throw new ArgumentException($"cannot resume {path}: it was trained on {(ckpt.Data.Latent is { } l ? $"latents of VAE '{l.Vae}'" : "pixels")}, the data now is {(data.Latent is { } d ? $"latents of VAE '{d.Vae}'" : "pixels")}");
        CheckData(ckpt.Config, data);
        CheckMemory(ckpt.Config, options, device, communicator);

        var model = new TerDiTModel(ckpt.Config);
        Checkpoint.CopyInto(model, ckpt.Model);
        var trainer = new Trainer(model, options, data, dataSpec, runDir, device, dtype, ckpt.Step, communicator);
        trainer.ema.Load(ckpt.Ema);
        trainer.optimizer.LoadState(ckpt.OptimizerStep, ckpt.OptimizerState);
        trainer.lastSavedStep = ckpt.Step;
        trainer.SkippedCheckpoints = skipped;
        return trainer;
    }

    /// <summary>
    /// On the CPU, refuses a run whose estimated memory (<see cref="ActivationMemory.Training"/> for this process's
    /// share of the batch) exceeds what the machine has, before anything is allocated. GPU memory is not checked here:
    /// libtorch reports its own out-of-memory error.
    /// </summary>
    static void CheckMemory(TerDiTConfig config, TrainOptions options, Device? device, ICommunicator? communicator)
    {
        if (device is not null && device.type != DeviceType.CPU) return;
        long perProcess = options.BatchSize / (communicator?.WorldSize ?? 1);
        MemoryBudget.Require(ActivationMemory.Training(config, perProcess),
            $"training {config.Name} ({config.Tokens} tokens) with --batch {options.BatchSize}");
    }

    static void CheckData(TerDiTConfig config, ITrainingSet data)
    {
        if (data.Channels != config.InChannels || data.Height != config.InputSize || data.Width != config.InputSize)
            throw new ArgumentException($"{(data.Latent is null ? "images" : "latents")} are {data.Channels}×{data.Height}×{data.Width}, the model takes {config.InChannels}×{config.InputSize}×{config.InputSize}");
        if (data.ClassNames.Count > config.NumClasses)
            throw new ArgumentException($"the data has {data.ClassNames.Count} classes, the model only {config.NumClasses}");
    }

    /// <summary>One optimizer step on the next batch; returns its metrics (not yet logged).</summary>
    public StepMetrics TrainStep()
    {
        var clock = Stopwatch.StartNew();
        var config = Model.Config;
        var (epoch, _) = order.Position(Step);
        using var scope = NewDisposeScope();
        using var generator = new Generator(Seeds.Derive(Options.Seed, Seeds.StepStream, (ulong)Step), CPU);
        var (x, y) = data.Gather(order.Batch(Step), Seeds.Derive(Options.Seed, Seeds.LatentStream, (ulong)Step), device, dtype); // (B, C, H, W), (B)
        var t = diffusion.SampleTimesteps(Options.BatchSize, generator, device);                   // (B)
        var yDropped = LabelEmbedder.LabelDropout(y, config.ClassDropout, config.NullClass, generator); // (B)
        var noise = randn(x.shape, ScalarType.Float32, generator: generator).to(dtype, device);    // (B, C, H, W)
        if (communicator is { WorldSize: > 1 } c)                                                  // this rank's B/W rows
            (x, t, yDropped, noise) = (DataSharding.ShardRows(x, c.Rank, c.WorldSize), DataSharding.ShardRows(t, c.Rank, c.WorldSize),
                                       DataSharding.ShardRows(yDropped, c.Rank, c.WorldSize), DataSharding.ShardRows(noise, c.Rank, c.WorldSize));

        Model.train();
        var (loss, mse, _) = diffusion.TrainingLosses((xt, tt, yy) => Model.call(xt, tt, yy), x, t, yDropped, noise); // (B) each
        var lossMean = loss.mean();
        flat.ZeroGrad();
        lossMean.backward();
        bucketer?.AverageGradients();
        double gradNorm = flat.ClipGradNorm(Options.GradClip > 0 ? Options.GradClip : double.PositiveInfinity);
        optimizer.Step();
        ema.Update();
        Step++;

        double lossValue = lossMean.item<float>(), mseValue = mse.mean().item<float>();
        if (communicator is not null)
        {
            var means = communicator.AverageScalars(device, lossValue, mseValue);
            (lossValue, mseValue) = (means[0], means[1]);
        }
        double seconds = clock.Elapsed.TotalSeconds;
        return new StepMetrics(Step, epoch, lossValue, mseValue, gradNorm, seconds, Options.BatchSize / seconds);
    }

    /// <summary>
    /// Trains until <c>Options.Steps</c>: a metrics line every <c>LogEvery</c> steps, a checkpoint every
    /// <c>CheckpointEvery</c> steps and at the end (also when <paramref name="cancel"/> fires, which stops early).
    /// <paramref name="onStep"/> sees every step's metrics.
    /// </summary>
    public void Run(Action<StepMetrics>? onStep = null, CancellationToken cancel = default)
    {
        while (Step < Options.Steps && !cancel.IsCancellationRequested)
        {
            var m = TrainStep();
            metrics?.Add(m);
            onStep?.Invoke(m);
            if (Step % Options.LogEvery == 0) metrics?.Flush();
            if (IsMain && Options.CheckpointEvery > 0 && Step % Options.CheckpointEvery == 0) SaveCheckpoint();
        }
        metrics?.Flush();
        if (IsMain && lastSavedStep != Step) SaveCheckpoint();
        communicator?.Barrier(); // no rank returns before rank 0's last checkpoint is in place
    }

    /// <summary>Writes RUN_DIR/checkpoints/step-NNNNNNN.ckpt for the current step; returns its path.</summary>
    public string SaveCheckpoint()
    {
        if (!IsMain) throw new InvalidOperationException($"only rank 0 writes checkpoints (this is rank {communicator!.Rank})");
        var path = Checkpoint.PathFor(RunDir, Step);
        var ckpt = new Checkpoint
        {
            Config = Model.Config, Options = Options, Step = Step, Data = dataInfo, DataPosition = order.Position(Step),
            OptimizerStep = optimizer.StepCount,
            Model = Model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter),
            Ema = ema.Weights().ToDictionary(p => p.Name, p => p.Value),
            OptimizerState = optimizer.State().ToDictionary(p => p.Name, p => p.Value),
        };
        ckpt.Save(path); // the tensors are live: not disposed here
        lastSavedStep = Step;
        return path;
    }

    public void Dispose()
    {
        metrics?.Dispose();
        bucketer?.Dispose();
        optimizer.Dispose();
        ema.Dispose();
        flat.Dispose();
        Model.Dispose();
    }
}
