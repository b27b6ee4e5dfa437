using TerDiT.Cli;
using TerDiT.Runtime.Config;
using TerDiT.Training;
using static TorchSharp.torch;


namespace TerDiT.Tests;

/// <summary>Tiny checkpoints and CLI runs shared by the pack and deploy tests.</summary>
static class PackFixtures
{
    public static readonly TerDiTConfig Tiny = Presets.Get("TerDiT-Tiny");

    /// <summary>
    /// Writes a step-3 checkpoint of <paramref name="config"/> into <paramref name="dir"/> whose raw and EMA
    /// weights are two different non-trivial models (<see cref="RuntimeParityTests.RandomModel"/>: every adaLN,
    /// final layer, bias and norm non-zero). Returns its path.
    /// </summary>
    public static string WriteCheckpoint(string dir, TerDiTConfig config, Func<string, Tensor, Tensor>? edit = null)
    {
        using var raw = RuntimeParityTests.RandomModel(config, 31);
        using var ema = RuntimeParityTests.RandomModel(config, 32);
        Dictionary<string, Tensor> Params(TerDiT.Model.TerDiTModel m) =>
            m.named_parameters().ToDictionary(p => p.name, p => edit is null ? p.parameter.detach() : edit(p.name, p.parameter.detach()));
        var ckpt = new Checkpoint
        {
            Config = config, Options = new TrainOptions(), Step = 3, Data = new DataInfo("fashion-mnist", 512), DataPosition = (0, 3),
            OptimizerStep = 3, Model = Params(raw), Ema = Params(ema), OptimizerState = new Dictionary<string, Tensor>(),
        };
        var path = Checkpoint.PathFor(dir, 3);
        ckpt.Save(path);
        return path;
    }


}
