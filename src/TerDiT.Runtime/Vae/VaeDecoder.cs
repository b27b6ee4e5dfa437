using System.Numerics.Tensors;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Ops;

namespace TerDiT.Runtime.Vae;

/// <summary>
/// The decoder of a diffusers <c>AutoencoderKL</c> (the Stable Diffusion VAE) in plain C#, channels-last,
/// on the runtime's <see cref="FloatGemm"/>: convolutions as im2col GEMMs (<see cref="Conv2d"/>),
/// <see cref="GroupNorm"/> with SiLU, the mid block's single-head self-attention on
/// <see cref="Attention"/>, nearest 2× upsampling folded into the following convolution. The network,
/// as diffusers builds it: <c>post_quant_conv</c> (1×1), <c>conv_in</c> (3×3) to the widest channels,
/// the mid block (ResNet, attention, ResNet), one up block per level from the lowest resolution
/// (LayersPerBlock + 1 ResNets, then upsample + 3×3 conv except after the last), group norm, SiLU,
/// <c>conv_out</c> (3×3) to RGB. ResNet blocks: <c>x' + conv2(SiLU(GN2(conv1(SiLU(GN1(x))))))</c>
/// with x' = x, or a 1×1 convolution of x where the channel count changes; group norms eps 1e-6.
/// Not safe for concurrent calls (buffers are reused).
/// </summary>
public sealed class VaeDecoder
{
    const float NormEps = 1e-6f;

    readonly ParallelOptions _parallel;
    readonly int _threads;
    readonly Conv2d? _postQuant;
    readonly Conv2d _convIn, _convOut;
    readonly Resnet[] _mid;
    readonly MidAttention? _attention;
    readonly Level[] _levels;
    readonly GroupNorm _normOut;

    public VaeConfig Config { get; }

    sealed record Resnet(GroupNorm Norm1, Conv2d Conv1, GroupNorm Norm2, Conv2d Conv2, Conv2d? Shortcut);
    sealed record Level(Resnet[] Resnets, Conv2d? Upsample, int Channels);
    sealed record MidAttention(GroupNorm Norm, FloatLinear Q, FloatLinear K, FloatLinear V, FloatLinear Out);

    /// <summary>Builds the decoder from a VAE folder's weights (every decoder tensor checked against the config).</summary>
    public VaeDecoder(VaeWeights weights, RuntimeOptions? options = null)
    {
        var c = Config = weights.Config;
        options ??= new RuntimeOptions();
        _parallel = options.Parallel;
        _threads = options.Threads;
        int top = c.BlockOutChannels[^1], groups = c.NormGroups;

        Conv2d Conv(string name, int cout, int cin, int k) =>
            new(weights.Get(name + ".weight", cout, cin, k, k), weights.Get(name + ".bias", cout), cout, cin, k, _parallel);
        GroupNorm Norm(string name, int channels) =>
            new(weights.Get(name + ".weight", channels), weights.Get(name + ".bias", channels), groups, NormEps, _parallel);
        Resnet Block(string name, int cin, int cout) => new(
            Norm(name + ".norm1", cin), Conv(name + ".conv1", cout, cin, 3), Norm(name + ".norm2", cout), Conv(name + ".conv2", cout, cout, 3),
            cin != cout ? Conv(name + ".conv_shortcut", cout, cin, 1) : null);
        FloatLinear Linear(string name, int n) => new(weights.Get(name + ".weight", n, n), weights.Get(name + ".bias", n), n, n, _parallel);

        if (c.UsePostQuantConv) _postQuant = Conv("post_quant_conv", c.LatentChannels, c.LatentChannels, 1);
        _convIn = Conv("decoder.conv_in", top, c.LatentChannels, 3);
        _mid = [Block("decoder.mid_block.resnets.0", top, top), Block("decoder.mid_block.resnets.1", top, top)];
        if (c.MidBlockAttention)
        {
            const string a = "decoder.mid_block.attentions.0";
            _attention = new MidAttention(Norm(a + ".group_norm", top), Linear(a + ".to_q", top), Linear(a + ".to_k", top), Linear(a + ".to_v", top), Linear(a + ".to_out.0", top));
        }
        var reversed = c.BlockOutChannels.Reverse().ToArray();
        _levels = new Level[reversed.Length];
        int previous = top;
        for (int i = 0; i < reversed.Length; i++)
        {
            int channels = reversed[i];
            var resnets = Enumerable.Range(0, c.LayersPerBlock + 1)
                .Select(j => Block($"decoder.up_blocks.{i}.resnets.{j}", j == 0 ? previous : channels, channels)).ToArray();
            var upsample = i < reversed.Length - 1 ? Conv($"decoder.up_blocks.{i}.upsamplers.0.conv", channels, channels, 3) : null;
            _levels[i] = new Level(resnets, upsample, channels);
            previous = channels;
        }
        _normOut = Norm("decoder.conv_norm_out", c.BlockOutChannels[0]);
        _convOut = Conv("decoder.conv_out", c.OutChannels, c.BlockOutChannels[0], 3);
    }

    /// <summary>
    /// Decodes model latents (N, LatentChannels, h, w) — VAE latents times <see cref="VaeConfig.ScalingFactor"/>,
    /// what a latent diffusion model samples — into images (N, OutChannels, h·f, w·f), f =
    /// <see cref="VaeConfig.DownsampleFactor"/>, values about [−1, 1] (not clamped): diffusers'
    /// <c>vae.decode(latents / scaling_factor).sample</c>. <paramref name="progress"/>(done, total) after each image.
    /// </summary>
    public float[] Decode(ReadOnlySpan<float> latents, int images, int height, int width, Action<int, int>? progress = null)
    {
        var c = Config;
        int f = c.DownsampleFactor, latentPlane = height * width, outH = height * f, outW = width * f;
        if (images <= 0 || height <= 0 || width <= 0) throw new ArgumentException($"latent batch must be non-empty, got {images}×{height}×{width}");
        if (latents.Length != (long)images * c.LatentChannels * latentPlane)
            throw new ArgumentException($"latents hold {latents.Length} floats, expected {images}×{c.LatentChannels}×{height}×{width}");

        // Buffers: the largest activation (or the mid block's Q, K, V and output), three of them.
        long largest = 3L * latentPlane * c.BlockOutChannels[^1];
        for (int i = 0, side = 1; i < _levels.Length; i++, side *= 2)
        {
            int widest = _levels[i].Resnets.Max(r => Math.Max(r.Norm1.Channels, r.Conv2.OutChannels));
            largest = Math.Max(largest, (long)latentPlane * side * side * widest);
            if (_levels[i].Upsample != null) largest = Math.Max(largest, (long)latentPlane * 4 * side * side * _levels[i].Channels);
        }
        long resultLength = MemoryBudget.Multiply(images, (long)c.OutChannels * outH * outW);
        long attentionScratch = _attention is null ? 0 : MemoryBudget.Multiply(_threads, (long)latentPlane * (latentPlane + 1));
        string what = $"decoding {images} image(s) of {outH}×{outW}";
        MemoryBudget.RequireArray(Math.Max(largest, resultLength), what);
        MemoryBudget.RequireArray((long)latentPlane * latentPlane, what);
        MemoryBudget.Require(MemoryBudget.Multiply(4, 3 * largest + resultLength + attentionScratch), what);
        var x = new float[largest];
        var t1 = new float[largest];
        var t2 = new float[largest];
        var attention = _attention is null ? null : new Attention(latentPlane, 1, c.BlockOutChannels[^1], _threads);

        var result = new float[resultLength];
        float inverseScale = (float)(1 / c.ScalingFactor);
        for (int n = 0; n < images; n++)
        {
            // (C, h, w) → (h·w, C), unscaled.
            var z = latents.Slice(n * c.LatentChannels * latentPlane, c.LatentChannels * latentPlane);
            for (int ch = 0; ch < c.LatentChannels; ch++)
                for (int p = 0; p < latentPlane; p++) t1[p * c.LatentChannels + ch] = z[ch * latentPlane + p] * inverseScale;
            if (_postQuant != null) _postQuant.Forward(t1, height, width, t2);
            else t1.AsSpan(0, latentPlane * c.LatentChannels).CopyTo(t2);
            int h = height, w = width;
            _convIn.Forward(t2, h, w, x);

            ResnetForward(_mid[0], x, h, w, t1, t2);
            if (_attention != null) AttentionForward(_attention, attention!, x, h * w, t1, t2);
            ResnetForward(_mid[1], x, h, w, t1, t2);
            foreach (var level in _levels)
            {
                foreach (var r in level.Resnets) ResnetForward(r, x, h, w, t1, t2);
                if (level.Upsample is null) continue;
                level.Upsample.Forward(x, h, w, t1, upsample: true);
                (h, w) = (2 * h, 2 * w);
                (x, t1) = (t1, x);
            }
            _normOut.Forward(x, h * w, t1, silu: true);
            _convOut.Forward(t1, h, w, t2);

            // (H·W, 3) → (3, H, W)
            var image = result.AsSpan(n * c.OutChannels * outH * outW, c.OutChannels * outH * outW);
            for (int p = 0; p < outH * outW; p++)
                for (int ch = 0; ch < c.OutChannels; ch++) image[ch * outH * outW + p] = t2[p * c.OutChannels + ch];
            progress?.Invoke(n + 1, images);
        }
        return result;
    }

    /// <summary>x (h·w, Cin) ← shortcut(x) + conv2(SiLU(GN2(conv1(SiLU(GN1(x)))))), now (h·w, Cout); t1, t2 are scratch.</summary>
    static void ResnetForward(Resnet r, float[] x, int h, int w, float[] t1, float[] t2)
    {
        int pixels = h * w, cout = r.Conv2.OutChannels;
        r.Norm1.Forward(x.AsSpan(0, pixels * r.Norm1.Channels), pixels, t1, silu: true);
        r.Conv1.Forward(t1, h, w, t2);
        r.Norm2.Forward(t2.AsSpan(0, pixels * cout), pixels, t2, silu: true);
        r.Conv2.Forward(t2, h, w, t1);
        var hidden = t1.AsSpan(0, pixels * cout);
        if (r.Shortcut is null) TensorPrimitives.Add(x.AsSpan(0, pixels * cout), hidden, x);
        else
        {
            r.Shortcut.Forward(x, h, w, t2);
            TensorPrimitives.Add(t2.AsSpan(0, pixels * cout), hidden, x);
        }
    }

    /// <summary>
    /// x (T, C) += to_out(softmax(q kᵀ / √C) v) with q, k, v = to_q/k/v(GroupNorm(x)): diffusers' single-head
    /// VAE attention (T = h·w tokens, residual connection, output scale 1).
    /// </summary>
    static void AttentionForward(MidAttention a, Attention op, float[] x, int tokens, float[] t1, float[] t2)
    {
        int ch = a.Norm.Channels, size = tokens * ch;
        a.Norm.Forward(x.AsSpan(0, size), tokens, t1, silu: false);
        a.Q.Forward(t1, t2.AsSpan(0, size), tokens);
        a.K.Forward(t1, t2.AsSpan(size, size), tokens);
        a.V.Forward(t1, t2.AsSpan(2 * size, size), tokens);
        op.Forward(t2.AsMemory(0, size), t2.AsMemory(size, size), t2.AsMemory(2 * size, size), t1.AsMemory(0, size), 1);
        a.Out.Forward(t1, t2.AsSpan(0, size), tokens);
        TensorPrimitives.Add(x.AsSpan(0, size), t2.AsSpan(0, size), x);
    }
}
