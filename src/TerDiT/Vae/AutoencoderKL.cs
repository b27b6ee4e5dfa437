using TerDiT.Runtime;
using TerDiT.Runtime.Import;
using TerDiT.Runtime.Vae;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace TerDiT.Vae;

/// <summary>
/// diffusers' <c>AutoencoderKL</c> (the Stable Diffusion VAE) in TorchSharp, with diffusers' module tree
/// and parameter names, so its weights load by name from a diffusers folder (<see cref="Load"/>). The
/// encoder turns images into the latent distribution the TerDiT models are trained on
/// (<see cref="Encode"/>); the decoder is the reference the runtime's <see cref="VaeDecoder"/> is
/// benchmarked against. Architecture: see <see cref="VaeDecoder"/>; the encoder mirrors it — conv_in,
/// one down block per level (LayersPerBlock ResNets, then a stride-2 3×3 conv on the input padded by one
/// pixel right and bottom, except after the last), the mid block, group norm, SiLU, conv_out to 2·latent
/// channels, quant_conv (1×1): mean and log-variance, the latter clamped to [−30, 20].
/// </summary>
public sealed class AutoencoderKL : Module<Tensor, Tensor>
{
    readonly Encoder encoder;
    readonly Decoder decoder;
    readonly Conv2d? quant_conv, post_quant_conv;

    public VaeConfig Config { get; }

    public AutoencoderKL(VaeConfig config) : base(nameof(AutoencoderKL))
    {
        Config = config.Validate();
        encoder = new Encoder(config);
        decoder = new Decoder(config);
        if (config.UseQuantConv) quant_conv = Conv2d(2 * config.LatentChannels, 2 * config.LatentChannels, 1);
        if (config.UsePostQuantConv) post_quant_conv = Conv2d(config.LatentChannels, config.LatentChannels, 1);
        RegisterComponents();
        // PyTorch's GroupNorm starts at γ = 1, β = 0; TorchSharp's leaves them uninitialised.
        using var _ = no_grad();
        foreach (var norm in modules().OfType<GroupNorm>())
        {
            norm.weight!.fill_(Scalars.One);
            norm.bias!.zero_();
        }
    }

    /// <summary>
    /// Builds the autoencoder of a diffusers folder and copies every parameter from its weights by name
    /// (each checked for its shape); parameters are float32 on <paramref name="device"/> (default CPU).
    /// </summary>
    public static AutoencoderKL Load(VaeWeights weights, Device? device = null)
    {
        var vae = new AutoencoderKL(weights.Config);
        using (no_grad())
            foreach (var (name, p) in vae.named_parameters())
            {
                using var t = tensor(weights.Get(name, p.shape), p.shape);
                p.copy_(t);
            }
        vae.eval();
        return device is null ? vae : vae.to(device);
    }

    /// <summary>
    /// Writes the autoencoder as a diffusers folder (<c>config.json</c> and <c>diffusion_pytorch_model.safetensors</c>,
    /// F32), which <see cref="VaeWeights.Open"/>, <see cref="Load"/> and diffusers read. The parameters must be
    /// float32 on the CPU.
    /// </summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        var tensors = named_parameters().Select(p =>
        {
            if (p.parameter.dtype != ScalarType.Float32 || p.parameter.device_type != DeviceType.CPU)
                throw new InvalidOperationException($"parameter '{p.name}' is {p.parameter.dtype} on {p.parameter.device_type}; save a float32 CPU model");
            var values = p.parameter.data<float>().ToArray();
            return (p.name, "F32", p.parameter.shape, (ReadOnlyMemory<byte>)System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
        }).ToList();
        SafetensorsFile.Write(Path.Combine(directory, VaeWeights.WeightsFileName), new Dictionary<string, string> { ["format"] = "pt" }, tensors);
        AtomicFile.WriteAllText(Path.Combine(directory, "config.json"), Config.ToJson());
    }

    /// <summary>The posterior of images x (N, C, H, W) in [−1, 1]: mean and standard deviation, each (N, latent, H/f, W/f).</summary>
    public (Tensor Mean, Tensor Std) Encode(Tensor x)
    {
        using var scope = NewDisposeScope();
        var moments = encoder.call(x);
        if (quant_conv is not null) moments = quant_conv.call(moments);
        var parts = moments.chunk(2, 1);
        using var s = new ScalarHolder();
        var std = parts[1].clamp(s.Of(-30), s.Of(20)).mul(s.Of(0.5)).exp();
        return (parts[0].MoveToOuterDisposeScope(), std.MoveToOuterDisposeScope());
    }

    /// <summary>Images (N, OutChannels, h·f, w·f) of VAE latents z (N, latent, h, w) (not scaled: divide model latents by the scaling factor first).</summary>
    public Tensor Decode(Tensor z)
    {
        using var scope = NewDisposeScope();
        if (post_quant_conv is not null) z = post_quant_conv.call(z);
        return decoder.call(z).MoveToOuterDisposeScope();
    }

    /// <summary>Decode(Encode(x).Mean).</summary>
    public override Tensor forward(Tensor x)
    {
        var (mean, std) = Encode(x);
        using (std) using (mean) return Decode(mean);
    }

    const double NormEps = 1e-6;

    static GroupNorm Norm(VaeConfig c, int channels) => GroupNorm(c.NormGroups, channels, NormEps);

    /// <summary>diffusers' ResnetBlock2D without time embedding.</summary>
    sealed class Resnet : Module<Tensor, Tensor>
    {
        readonly GroupNorm norm1, norm2;
        readonly Conv2d conv1, conv2;
        readonly Conv2d? conv_shortcut;

        public Resnet(VaeConfig c, int cin, int cout) : base(nameof(Resnet))
        {
            norm1 = Norm(c, cin);
            conv1 = Conv2d(cin, cout, 3, padding: 1);
            norm2 = Norm(c, cout);
            conv2 = Conv2d(cout, cout, 3, padding: 1);
            if (cin != cout) conv_shortcut = Conv2d(cin, cout, 1);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var h = conv1.call(functional.silu(norm1.call(x)));
            h = conv2.call(functional.silu(norm2.call(h)));
            return (conv_shortcut is null ? x : conv_shortcut.call(x)).Plus(h).MoveToOuterDisposeScope();
        }
    }

    /// <summary>diffusers' single-head VAE attention: x + to_out(softmax(q kᵀ/√C) v), q, k, v from GroupNorm(x).</summary>
    sealed class SelfAttention : Module<Tensor, Tensor>
    {
        readonly GroupNorm group_norm;
        readonly Linear to_q, to_k, to_v;
        readonly ModuleList<Linear> to_out;

        public SelfAttention(VaeConfig c, int channels) : base(nameof(SelfAttention))
        {
            group_norm = Norm(c, channels);
            to_q = Linear(channels, channels);
            to_k = Linear(channels, channels);
            to_v = Linear(channels, channels);
            to_out = new ModuleList<Linear>(Linear(channels, channels));
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            long n = x.shape[0], ch = x.shape[1], h = x.shape[2], w = x.shape[3];
            var tokens = group_norm.call(x).view(n, ch, h * w).transpose(1, 2);                   // (N, T, C)
            var q = to_q.call(tokens);
            var k = to_k.call(tokens);
            var v = to_v.call(tokens);
            using var scale = (1.0 / Math.Sqrt(ch)).ToScalar();
            var probs = q.matmul(k.transpose(1, 2)).mul(scale).softmax(-1);                        // (N, T, T)
            var o = to_out[0].call(probs.matmul(v));                                              // (N, T, C)
            return x.Plus(o.transpose(1, 2).reshape(n, ch, h, w)).MoveToOuterDisposeScope();
        }
    }

    sealed class MidBlock : Module<Tensor, Tensor>
    {
        readonly ModuleList<Resnet> resnets;
        readonly ModuleList<SelfAttention> attentions;

        public MidBlock(VaeConfig c, int channels) : base(nameof(MidBlock))
        {
            resnets = new ModuleList<Resnet>(new Resnet(c, channels, channels), new Resnet(c, channels, channels));
            attentions = c.MidBlockAttention ? new ModuleList<SelfAttention>(new SelfAttention(c, channels)) : new ModuleList<SelfAttention>();
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            x = resnets[0].call(x);
            if (attentions.Count > 0) x = attentions[0].call(x);
            return resnets[1].call(x).MoveToOuterDisposeScope();
        }
    }

    /// <summary>A stride-2 3×3 conv after padding one pixel right and bottom (diffusers' Downsample2D, padding 0).</summary>
    sealed class Downsample : Module<Tensor, Tensor>
    {
        readonly Conv2d conv;

        public Downsample(int channels) : base(nameof(Downsample))
        {
            conv = Conv2d(channels, channels, 3, stride: 2);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var padded = functional.pad(x, [0, 1, 0, 1]);
            return conv.call(padded);
        }
    }

    /// <summary>Nearest 2× upsampling, then a 3×3 conv (diffusers' Upsample2D).</summary>
    sealed class Upsample : Module<Tensor, Tensor>
    {
        readonly Conv2d conv;

        public Upsample(int channels) : base(nameof(Upsample))
        {
            conv = Conv2d(channels, channels, 3, padding: 1);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var up = functional.interpolate(x, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest);
            return conv.call(up);
        }
    }

    sealed class Level : Module<Tensor, Tensor>
    {
        readonly ModuleList<Resnet> resnets;
        readonly ModuleList<Downsample>? downsamplers;
        readonly ModuleList<Upsample>? upsamplers;

        public Level(VaeConfig c, int cin, int cout, int layers, bool down, bool resample) : base(nameof(Level))
        {
            resnets = new ModuleList<Resnet>(Enumerable.Range(0, layers).Select(j => new Resnet(c, j == 0 ? cin : cout, cout)).ToArray());
            if (resample && down) downsamplers = new ModuleList<Downsample>(new Downsample(cout));
            if (resample && !down) upsamplers = new ModuleList<Upsample>(new Upsample(cout));
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            foreach (var r in resnets) x = r.call(x);
            if (downsamplers is not null) x = downsamplers[0].call(x);
            if (upsamplers is not null) x = upsamplers[0].call(x);
            return x.MoveToOuterDisposeScope();
        }
    }

    sealed class Encoder : Module<Tensor, Tensor>
    {
        readonly Conv2d conv_in, conv_out;
        readonly ModuleList<Level> down_blocks;
        readonly MidBlock mid_block;
        readonly GroupNorm conv_norm_out;

        public Encoder(VaeConfig c) : base(nameof(Encoder))
        {
            var ch = c.BlockOutChannels;
            conv_in = Conv2d(c.InChannels, ch[0], 3, padding: 1);
            down_blocks = new ModuleList<Level>(Enumerable.Range(0, ch.Count)
                .Select(i => new Level(c, i == 0 ? ch[0] : ch[i - 1], ch[i], c.LayersPerBlock, down: true, resample: i < ch.Count - 1)).ToArray());
            mid_block = new MidBlock(c, ch[^1]);
            conv_norm_out = Norm(c, ch[^1]);
            conv_out = Conv2d(ch[^1], 2 * c.LatentChannels, 3, padding: 1);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            x = conv_in.call(x);
            foreach (var level in down_blocks) x = level.call(x);
            x = mid_block.call(x);
            return conv_out.call(functional.silu(conv_norm_out.call(x))).MoveToOuterDisposeScope();
        }
    }

    sealed class Decoder : Module<Tensor, Tensor>
    {
        readonly Conv2d conv_in, conv_out;
        readonly MidBlock mid_block;
        readonly ModuleList<Level> up_blocks;
        readonly GroupNorm conv_norm_out;

        public Decoder(VaeConfig c) : base(nameof(Decoder))
        {
            var ch = c.BlockOutChannels.Reverse().ToArray();
            conv_in = Conv2d(c.LatentChannels, ch[0], 3, padding: 1);
            mid_block = new MidBlock(c, ch[0]);
            up_blocks = new ModuleList<Level>(Enumerable.Range(0, ch.Length)
                .Select(i => new Level(c, i == 0 ? ch[0] : ch[i - 1], ch[i], c.LayersPerBlock + 1, down: false, resample: i < ch.Length - 1)).ToArray());
            conv_norm_out = Norm(c, ch[^1]);
            conv_out = Conv2d(ch[^1], c.OutChannels, 3, padding: 1);
            RegisterComponents();
        }

        public override Tensor forward(Tensor z)
        {
            using var scope = NewDisposeScope();
            var x = mid_block.call(conv_in.call(z));
            foreach (var level in up_blocks) x = level.call(x);
            return conv_out.call(functional.silu(conv_norm_out.call(x))).MoveToOuterDisposeScope();
        }
    }
}
