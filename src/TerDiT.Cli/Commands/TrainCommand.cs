using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using TerDiT.Data;
using TerDiT.Training;

namespace TerDiT.Cli.Commands;

/// <summary><c>terdit train</c>: trains a model, writing RUN_DIR/checkpoints/step-NNNNNNN.ckpt and RUN_DIR/metrics.jsonl.</summary>
static class TrainCommand
{
    public static Command Create()
    {
        var model = new ModelOptions(presetRequired: false);
        var data = new Option<string>("--data")
        {
            Description = "fashion-mnist, a folder with one sub-folder of PNG/JPEG images per class, or a latents file (terdit encode: the model then takes its latent channels and size)",
            DefaultValueFactory = _ => DatasetSource.FashionMnistName,
        };
        var dataDir = new Option<string?>("--data-dir") { Description = $"folder of the Fashion-MNIST IDX files (default {FashionMnist.DefaultDirectory})" };
        var resize = new Option<bool>("--resize") { Description = "resize Fashion-MNIST to the model's input size instead of padding it" };
        var limit = new Option<int?>("--limit") { Description = "train on the first N images only" };
        var steps = new Option<long>("--steps") { Description = "total optimizer steps", DefaultValueFactory = _ => 1000 };
        var batch = new Option<int>("--batch") { Description = "batch size", DefaultValueFactory = _ => 32 };
        var output = new Option<string>("--out") { Description = "run directory", Required = true };
        var device = DeviceOption.Create();
        var threads = ThreadsOption.Create();
        var seed = new Option<ulong>("--seed") { Description = "seed of the initialisation, data order and noise", DefaultValueFactory = _ => 0 };
        var resume = new Option<bool>("--resume") { Description = "continue from the run directory's latest checkpoint" };
        var lr = new Option<double>("--lr") { Description = "AdamW learning rate", DefaultValueFactory = _ => 1e-4 };
        var weightDecay = new Option<double>("--weight-decay") { Description = "AdamW weight decay", DefaultValueFactory = _ => 0 };
        var gradClip = new Option<double>("--grad-clip") { Description = "max global gradient norm (0: no clipping)", DefaultValueFactory = _ => 2.0 };
        var emaDecay = new Option<double>("--ema-decay") { Description = "EMA decay of the weights", DefaultValueFactory = _ => 0.9999 };
        var ckptEvery = new Option<long>("--ckpt-every") { Description = "checkpoint interval in steps (0: only at the end)", DefaultValueFactory = _ => 1000 };
        var precision = PrecisionOption.Create();
        var logEvery = new Option<long>("--log-every") { Description = "metrics interval in steps", DefaultValueFactory = _ => 10 };
        var gpus = GpusOption.Create("data-parallel ranks, one GPU each, through NCCL (needs --device cuda; --batch is the global batch)");

        var command = new Command("train", "Train a TerDiT model on Fashion-MNIST or an image folder.");
        model.AddTo(command);
        foreach (var o in new Option[] { data, dataDir, resize, limit, steps, batch, output, device, seed, resume, lr, weightDecay, gradClip, emaDecay, ckptEvery, logEvery, precision, threads, gpus })
            command.Add(o);

        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            ThreadsOption.Apply(p.GetValue(threads));
            var config = model.Resolve(p);
            bool resuming = p.GetValue(resume);
            var runDir = p.GetValue(output)!;
            if (config is null && !resuming) throw new ArgumentException("--preset is required (except with --resume)");
            var options = new TrainOptions
            {
                Steps = p.GetValue(steps), BatchSize = p.GetValue(batch), LearningRate = p.GetValue(lr), WeightDecay = p.GetValue(weightDecay),
                GradClip = p.GetValue(gradClip), EmaDecay = p.GetValue(emaDecay), Seed = p.GetValue(seed),
                CheckpointEvery = p.GetValue(ckptEvery), LogEvery = p.GetValue(logEvery), Precision = p.GetValue(precision),
            }.Validate();
            int worldSize = p.GetValue(gpus);
            GpusOption.CheckTraining(worldSize, p.GetValue(device)!, options.BatchSize);
            if (GpusOption.LaunchIfNeeded(p, worldSize, runDir, forwardAllOutput: false) is { } exitCode) return exitCode;
            var dev = DeviceOption.Resolve(p.GetValue(device)!);
            using var communicator = GpusOption.Join(worldSize, dev);
            var dataSpec = p.GetValue(data)!;
            ITrainingSet images;
            if (LatentSet.IsLatentFile(dataSpec))
            {
                if (p.GetValue(resize) || p.GetValue(dataDir) is not null) throw new ArgumentException("--resize and --data-dir apply to images, not to a latents file");
                var latents = LatentSet.Load(dataSpec);
                images = p.GetValue(limit) is { } n ? latents.Take(n) : latents;
                // A latent model takes the latents' channels and size (the preset's data shape is for pixels).
                if (config is not null) config = config with { InChannels = latents.Channels, InputSize = latents.Height };
            }
            else
            {
                // The data are shaped for the checkpoint's model when resuming without --preset.
                var shapeConfig = config;
                if (shapeConfig is null)
                    using (var ckpt = Checkpoint.LoadLatestValid(runDir, out _, out _)) shapeConfig = ckpt.Config;
                images = DatasetSource.Load(dataSpec, shapeConfig, p.GetValue(dataDir), p.GetValue(resize), p.GetValue(limit));
            }

            using var trainer = resuming
                ? Trainer.Resume(runDir, options, images, dataSpec, config, dev, communicator: communicator)
                : Trainer.Start(config!, options, images, dataSpec, runDir, dev, communicator: communicator);
            foreach (var damaged in trainer.SkippedCheckpoints) stdout.WriteLine($"warning: passed over a damaged checkpoint: {damaged}");
            foreach (var tmp in trainer.RemovedTemporaries) stdout.WriteLine($"removed {tmp}, left by a killed run");
            stdout.WriteLine($"{(resuming ? "resuming" : "training")} {trainer.Model.Config.Name} ({(trainer.Model.Config.Ternary ? "ternary" : "full precision")}) " +
                             $"on {images.Count} {(images.Latent is null ? "images" : "latents")} of '{dataSpec}', step {trainer.Step} → {options.Steps}, batch {options.BatchSize}, device {dev.type}" +
                             (communicator is null ? "" : $" × {communicator.WorldSize} ranks"));
            long first = trainer.Step;
            if (ReferenceEquals(stdout, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive)
                AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask("training", maxValue: Math.Max(1, options.Steps - first));
                        trainer.Run(m =>
                        {
                            task.Value = m.Step - first;
                            task.Description = $"step {m.Step} loss {m.Loss:F4} grad {m.GradNorm:F3} {m.ImagesPerSecond:F0} img/s";
                        });
                    });
            else
                trainer.Run(m =>
                {
                    if (m.Step % options.LogEvery == 0 || m.Step == options.Steps)
                        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"step {m.Step}/{options.Steps} loss {m.Loss:F4} mse {m.Mse:F4} grad {m.GradNorm:F3} {m.StepSeconds * 1000:F0} ms/step {m.ImagesPerSecond:F1} img/s"));
                });
            stdout.WriteLine($"checkpoint: {Checkpoint.Resolve(runDir)}");
            stdout.WriteLine($"metrics: {trainer.MetricsPath}");
            return 0;
        }));
        return command;
    }
}
