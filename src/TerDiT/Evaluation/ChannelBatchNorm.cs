using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TerDiT.Evaluation;

/// <summary>
/// Batch normalisation over the channels of (N, C, H, W), computed as TorchSharp's BatchNorm2d computes it and
/// with its state (weight, bias, running_mean, running_var, num_batches_tracked; momentum 0.1, eps 1e-5), except
/// that a training step counts its batch with a Scalar that stays alive (BatchNorm2d's does not, see
/// <see cref="Scalars"/>).
/// </summary>
public sealed class ChannelBatchNorm : nn.Module<Tensor, Tensor>
{
    const double Momentum = 0.1, Eps = 1e-5;

    readonly Parameter weight, bias;
    readonly Tensor running_mean, running_var, num_batches_tracked;

    public ChannelBatchNorm(long channels) : base(nameof(ChannelBatchNorm))
    {
        weight = new Parameter(ones(channels));
        bias = new Parameter(zeros(channels));
        running_mean = zeros(channels);
        running_var = ones(channels);
        num_batches_tracked = zeros([], ScalarType.Int64);
        RegisterComponents();
    }

    /// <summary>Weight 1, bias 0, running statistics reset (mean 0, variance 1, no batches counted).</summary>
    public void Reset()
    {
        using var noGrad = no_grad();
        weight.fill_(Scalars.One);
        bias.zero_();
        running_mean.zero_();
        running_var.fill_(Scalars.One);
        num_batches_tracked.zero_();
    }

    /// <summary>(N, C, H, W) → (N, C, H, W): batch statistics while training (updating the running ones), running statistics otherwise.</summary>
    public override Tensor forward(Tensor x)
    {
        if (x.ndim != 4 || x.shape[1] != weight.shape[0])
            throw new ArgumentException($"expected (N, {weight.shape[0]}, H, W), got ({string.Join(", ", x.shape)})");
        if (training) num_batches_tracked.PlusInPlace(Scalars.One);
        return F.batch_norm(x, running_mean, running_var, weight, bias, training, Momentum, Eps);
    }
}
