using TerDiT.Runtime.Config;

namespace TerDiT.Runtime.Tests;

/// <summary>
/// The TerDiT forward written from docs/PAPER.md §2/§8 as plainly as possible, in double precision,
/// sharing no code with the runtime: the oracle for <c>RuntimeModel</c>.
/// </summary>
static class ModelReferenceForward
{
    public static float[] Run(TerDiTConfig c, Dictionary<string, float[]> w, float[] x, int[] t, int[] y)
    {
        int n = t.Length, p = c.PatchSize, g = c.GridSize, size = c.InputSize, tokens = c.Tokens, d = c.HiddenSize, hd = c.HeadDim;
        var output = new float[n * c.OutChannels * size * size];
        for (int b = 0; b < n; b++)
        {
            // Patchify: token (gi, gj), feature (channel, row, col).
            var patches = new double[tokens][];
            for (int gi = 0; gi < g; gi++)
                for (int gj = 0; gj < g; gj++)
                {
                    var f = patches[gi * g + gj] = new double[c.PatchFeatures];
                    for (int ch = 0; ch < c.InChannels; ch++)
                        for (int r = 0; r < p; r++)
                            for (int q = 0; q < p; q++)
                                f[(ch * p + r) * p + q] = x[((b * c.InChannels + ch) * size + gi * p + r) * size + gj * p + q];
                }
            var h = patches.Select(f => Linear(w, "x_embedder", f)).ToArray();

            // Conditioning.
            var freq = new double[256];
            for (int i = 0; i < 128; i++)
            {
                double a = t[b] * Math.Exp(-Math.Log(10000) * i / 128);
                freq[i] = Math.Cos(a);
                freq[128 + i] = Math.Sin(a);
            }
            var temb = Linear(w, "t_embedder.fc2", Silu(Linear(w, "t_embedder.fc1", freq)));
            var cond = temb.Select((v, j) => v + w["y_embedder.embedding_table.weight"][y[b] * c.CondDim + j]).ToArray();
            var siluC = Silu(cond);

            for (int l = 0; l < c.Depth; l++)
            {
                string pre = $"blocks.{l}.";
                var mod = Linear(w, pre + "adaLN_modulation", siluC);
                if (c.AdaLnNorm) mod = RmsNorm(mod, w[pre + "adaLN_norm.weight"], 1e-5);
                double[] Chunk(int i) => mod[(i * d)..((i + 1) * d)];

                var hin = h.Select(row => Modulate(RmsNorm(row, w[pre + "attention_norm.weight"], 1e-5), Chunk(0), Chunk(1))).ToArray();
                var q = hin.Select(row => Linear(w, pre + "attention.wq", row)).ToArray();
                var k = hin.Select(row => Linear(w, pre + "attention.wk", row)).ToArray();
                var v = hin.Select(row => Linear(w, pre + "attention.wv", row)).ToArray();
                if (c.QkNorm)
                {
                    q = q.Select(row => LayerNorm(row, w[pre + "attention.q_norm.weight"], w[pre + "attention.q_norm.bias"], 1e-5)).ToArray();
                    k = k.Select(row => LayerNorm(row, w[pre + "attention.k_norm.weight"], w[pre + "attention.k_norm.bias"], 1e-5)).ToArray();
                }
                for (int tok = 0; tok < tokens; tok++) { Rope(q[tok], tok, hd); Rope(k[tok], tok, hd); }
                var attn = new double[tokens][];
                for (int i = 0; i < tokens; i++) attn[i] = new double[d];
                for (int head = 0; head < c.NumHeads; head++)
                    for (int i = 0; i < tokens; i++)
                    {
                        var s = new double[tokens];
                        for (int j = 0; j < tokens; j++)
                        {
                            for (int e = 0; e < hd; e++) s[j] += q[i][head * hd + e] * k[j][head * hd + e];
                            s[j] /= Math.Sqrt(hd);
                        }
                        double max = s.Max(), sum = s.Sum(z => Math.Exp(z - max));
                        for (int j = 0; j < tokens; j++)
                            for (int e = 0; e < hd; e++) attn[i][head * hd + e] += Math.Exp(s[j] - max) / sum * v[j][head * hd + e];
                    }
                for (int tok = 0; tok < tokens; tok++)
                {
                    var o = Linear(w, pre + "attention.wo", attn[tok]);
                    for (int j = 0; j < d; j++) h[tok][j] += mod[2 * d + j] * o[j];
                }
                for (int tok = 0; tok < tokens; tok++)
                {
                    var m = Modulate(RmsNorm(h[tok], w[pre + "ffn_norm.weight"], 1e-5), Chunk(3), Chunk(4));
                    var a1 = Linear(w, pre + "feed_forward.w1", m);
                    var a3 = Linear(w, pre + "feed_forward.w3", m);
                    var o = Linear(w, pre + "feed_forward.w2", Silu(a1).Select((z, j) => z * a3[j]).ToArray());
                    for (int j = 0; j < d; j++) h[tok][j] += mod[5 * d + j] * o[j];
                }
            }

            var fmod = Linear(w, "final_layer.adaLN_modulation", siluC);
            for (int tok = 0; tok < tokens; tok++)
            {
                var o = Linear(w, "final_layer.linear", Modulate(LayerNorm(h[tok], null, null, 1e-6), fmod[..d], fmod[d..]));
                int gi = tok / g, gj = tok % g;
                for (int r = 0; r < p; r++)
                    for (int qq = 0; qq < p; qq++)
                        for (int ch = 0; ch < c.OutChannels; ch++)
                            output[((b * c.OutChannels + ch) * size + gi * p + r) * size + gj * p + qq] = (float)o[(r * p + qq) * c.OutChannels + ch];
            }
        }
        return output;
    }

    /// <summary>y = W x (+ b), W (out, in) from "{name}.weight", b from "{name}.bias" if present.</summary>
    static double[] Linear(Dictionary<string, float[]> w, string name, double[] x)
    {
        var weight = w[name + ".weight"];
        int outF = weight.Length / x.Length;
        w.TryGetValue(name + ".bias", out var bias);
        var y = new double[outF];
        for (int o = 0; o < outF; o++)
        {
            double s = bias?[o] ?? 0;
            for (int i = 0; i < x.Length; i++) s += weight[o * x.Length + i] * x[i];
            y[o] = s;
        }
        return y;
    }

    static double[] Silu(double[] x) => x.Select(v => v / (1 + Math.Exp(-v))).ToArray();

    static double[] RmsNorm(double[] x, float[] weight, double eps)
    {
        double inv = 1 / Math.Sqrt(x.Sum(v => v * v) / x.Length + eps);
        return x.Select((v, i) => v * inv * weight[i]).ToArray();
    }

    static double[] LayerNorm(double[] x, float[]? weight, float[]? bias, double eps)
    {
        double mean = x.Average(), var = x.Sum(v => (v - mean) * (v - mean)) / x.Length;
        return x.Select((v, i) => (v - mean) / Math.Sqrt(var + eps) * (weight?[i] ?? 1) + (bias?[i] ?? 0)).ToArray();
    }

    static double[] Modulate(double[] x, double[] shift, double[] scale) => x.Select((v, i) => v * (1 + scale[i]) + shift[i]).ToArray();

    static void Rope(double[] x, int position, int hd)
    {
        for (int h0 = 0; h0 < x.Length; h0 += hd)
            for (int i = 0; i < hd / 2; i++)
            {
                double angle = position / Math.Pow(10000, 2.0 * i / hd);
                double re = x[h0 + 2 * i], im = x[h0 + 2 * i + 1];
                x[h0 + 2 * i] = re * Math.Cos(angle) - im * Math.Sin(angle);
                x[h0 + 2 * i + 1] = re * Math.Sin(angle) + im * Math.Cos(angle);
            }
    }
}
