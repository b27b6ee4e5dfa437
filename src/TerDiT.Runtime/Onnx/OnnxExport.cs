using System.Runtime.InteropServices;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Ops;

namespace TerDiT.Runtime.Onnx;

/// <summary>What the ternary linears of an exported graph compute.</summary>
public enum OnnxPrecision
{
    /// <summary>fp32 <c>MatMul</c> against the dense weights alpha·W_t (the runtime's Exact mode).</summary>
    Float32,
    /// <summary>
    /// Per-token int8 activations (<c>QuantizeLinear</c> per row, scale absmax/127) times the trits as
    /// int8 weights (<c>MatMulInteger</c>, int32 sums), rescaled by scale·alpha: the runtime's A8 mode for
    /// the ternary linears; attention and every other op stay fp32.
    /// </summary>
    Int8,
}

/// <summary>Files an export wrote: the model, and the external-data file when the weights are stored beside it.</summary>
public sealed record OnnxExportResult(string ModelPath, long ModelBytes, string? DataPath, long DataBytes);

/// <summary>
/// Writes a packed TerDiT model (<see cref="TditFile"/>) as an ONNX graph (opset
/// <see cref="Opset"/>, standard operators only) that computes the runtime's forward
/// (<see cref="RuntimeModel.Forward"/>): inputs <c>x</c> (N, C, H, W) float, <c>t</c> (N) int64
/// timestep indices, <c>y</c> (N) int64 labels (NumClasses = null class); output <c>out</c>
/// (N, OutChannels, H, W). N is symbolic. The time-embedding frequencies and the RoPE tables are
/// constants, computed as the runtime computes them. Models whose weights exceed
/// <see cref="ExternalDataThreshold"/> bytes keep them in <c>OUT.data</c> beside the graph (ONNX
/// external data; a protobuf message cannot exceed 2 GiB). Both files are written atomically.
/// </summary>
public static class OnnxExport
{
    /// <summary>The default-domain opset the graphs use (LayerNormalization needs 17).</summary>
    public const int Opset = 17;

    /// <summary>Initializer bytes above which the weights go to an external-data file.</summary>
    public const long ExternalDataThreshold = 1L << 30;

    /// <summary>
    /// Writes <paramref name="model"/> to <paramref name="path"/> (and <c>path.data</c> when its weights
    /// exceed <paramref name="externalDataAbove"/> bytes, default <see cref="ExternalDataThreshold"/>).
    /// </summary>
    public static OnnxExportResult Export(TditFile model, string path, OnnxPrecision precision, long externalDataAbove = ExternalDataThreshold)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!Enum.IsDefined(precision)) throw new ArgumentOutOfRangeException(nameof(precision), precision, "unknown ONNX precision");
        var config = model.Config;
        if (precision == OnnxPrecision.Int8 && !config.Ternary)
            throw new ArgumentException($"{Path.GetFileName(model.Path)} is a full-precision model: the int8 graph quantizes ternary weights only");
        long weightBytes = ParameterSchema.Enumerate(config).Sum(p =>
            p.Kind == ParameterKind.TernaryWeight && precision == OnnxPrecision.Int8 ? p.Elements : 4 * p.Elements);
        path = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(path)!, dataName = Path.GetFileName(path) + ".data";
        string TempOf(string target) => Path.Combine(dir, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.tmp");
        string modelTemp = TempOf(path), dataPath = Path.Combine(dir, dataName);
        string? dataTemp = weightBytes > externalDataAbove ? TempOf(dataPath) : null;
        try
        {
            using (var data = dataTemp is null ? null : new FileStream(dataTemp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 20))
            {
                var graph = new OnnxGraph("terdit", data, dataName);
                new TerDiTGraph(model, graph, precision).Build();
                using var stream = new FileStream(modelTemp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
                graph.WriteModel(stream, Opset, "TerDiT.NET", typeof(OnnxExport).Assembly.GetName().Version?.ToString() ?? "0",
                    $"{config.Name} ({model.Info.Preset}), ternary linears as {(precision == OnnxPrecision.Int8 ? "per-token int8 x int8 trits" : "fp32")}; "
                    + "inputs x (N, C, H, W), t (N) timesteps, y (N) labels; output (N, OutChannels, H, W)");
                stream.Flush(flushToDisk: true);
                data?.Flush(flushToDisk: true);
            }
            if (dataTemp is not null) File.Move(dataTemp, dataPath, overwrite: true);
            File.Move(modelTemp, path, overwrite: true);
            return new OnnxExportResult(path, new FileInfo(path).Length, dataTemp is null ? null : dataPath, dataTemp is null ? 0 : new FileInfo(dataPath).Length);
        }
        finally
        {
            File.Delete(modelTemp);
            if (dataTemp is not null) File.Delete(dataTemp);
        }
    }

    /// <summary>The TerDiT forward as graph nodes; mirrors <see cref="RuntimeModel"/> op by op.</summary>
    sealed class TerDiTGraph(TditFile file, OnnxGraph g, OnnxPrecision precision)
    {
        readonly TerDiTConfig c = file.Config;
        readonly Dictionary<string, string> _constants = [];

        public void Build()
        {
            int d = c.HiddenSize, t = c.Tokens, p = c.PatchSize, gs = c.GridSize, co = c.OutChannels;
            string x = g.Input("x", OnnxType.Float, "N", c.InChannels, c.InputSize, c.InputSize);
            string ts = g.Input("t", OnnxType.Int64, "N");
            string labels = g.Input("y", OnnxType.Int64, "N");

            // Patchify: (N, C, g, p, g, p) → (N, g, g, C, p, p) → (N, T, C·p·p), features (c, row, col).
            string patches = Reshape(g.Node("Transpose", [Reshape(x, -1, c.InChannels, gs, p, gs, p)], OnnxAttribute.Ints("perm", 0, 2, 4, 1, 3, 5)), -1, t, c.PatchFeatures);
            string h = FullLinear(patches, "x_embedder");                                     // (N, T, D)

            // Conditioning: [cos, sin](t · freq) (N, 256) → MLP → + label embedding → SiLU (N, cdim).
            float[] freq = RuntimeModel.TimestepFrequencies();
            string angles = g.Node("Mul", [Unsqueeze(g.Node("Cast", [ts], OnnxAttribute.Int("to", (long)OnnxType.Float)), 1), g.Floats("t_embedder.frequencies", [1, freq.Length], freq)]);
            string features = g.Node("Concat", [g.Node("Cos", [angles]), g.Node("Sin", [angles])], OnnxAttribute.Int("axis", 1));
            string temb = FullLinear(Silu(FullLinear(features, "t_embedder.fc1")), "t_embedder.fc2");
            string yemb = g.Node("Gather", [g.Floats("y_embedder.embedding_table.weight", [c.NumClasses + 1, c.CondDim], Full("y_embedder.embedding_table.weight")), labels], OnnxAttribute.Int("axis", 0));
            string siluC = Silu(g.Node("Add", [temb, yemb]));

            var (cos, sin, swap) = RopeTables();
            for (int i = 0; i < c.Depth; i++) h = Block(h, siluC, $"blocks.{i}.", cos, sin, swap);

            // Final layer: shift, scale = adaLN(SiLU(c)); LayerNorm without affine; modulate; linear; unpatchify.
            string[] mod = Chunks(FullLinear(siluC, "final_layer.adaLN_modulation"), 2);
            string normed = g.Node("LayerNormalization", [h, g.Floats("final_layer.norm.ones", [d], Enumerable.Repeat(1f, d).ToArray()), g.Floats("final_layer.norm.zeros", [d], new float[d])],
                OnnxAttribute.Int("axis", -1), OnnxAttribute.Float("epsilon", RuntimeModel.FinalNormEps));
            string o = FullLinear(Modulate(normed, mod[0], mod[1]), "final_layer.linear");                 // (N, T, p·p·Cout)
            // (N, g, g, p, p, Cout) → (N, Cout, g, p, g, p) → (N, Cout, H, W)
            string image = Reshape(g.Node("Transpose", [Reshape(o, -1, gs, gs, p, p, co)], OnnxAttribute.Ints("perm", 0, 5, 1, 3, 2, 4)), -1, co, c.InputSize, c.InputSize);
            g.Output(g.Named("Identity", "out", [image]), OnnxType.Float, "N", co, c.InputSize, c.InputSize);
        }

        string Block(string x, string siluC, string b, string cos, string sin, string swap)
        {
            int d = c.HiddenSize, t = c.Tokens, heads = c.NumHeads, hd = c.HeadDim;
            // mod (N, 6D) = [RMSNorm_6D](adaLN(SiLU(c))): shift/scale/gate msa, shift/scale/gate mlp, each (N, 1, D).
            string mod = TernaryLinear(siluC, b + "adaLN_modulation", Full(b + "adaLN_modulation.bias"), tokens: null);
            if (c.AdaLnNorm) mod = RmsNorm(mod, b + "adaLN_norm.weight");
            string[] m = Chunks(mod, 6);

            string h = Modulate(RmsNorm(x, b + "attention_norm.weight"), m[0], m[1]);          // (N, T, D)
            string q = TernaryLinear(h, b + "attention.wq", null, t), k = TernaryLinear(h, b + "attention.wk", null, t), v = TernaryLinear(h, b + "attention.wv", null, t);
            if (c.QkNorm)
            {
                q = LayerNorm(q, b + "attention.q_norm");
                k = LayerNorm(k, b + "attention.k_norm");
            }
            q = Rope(q, cos, sin, swap);
            k = Rope(k, cos, sin, swap);
            // Heads: Q, V (N, H, T, hd), Kᵀ (N, H, hd, T); softmax(Q Kᵀ / √hd) V → (N, T, D).
            string qh = g.Node("Transpose", [Reshape(q, -1, t, heads, hd)], OnnxAttribute.Ints("perm", 0, 2, 1, 3));
            string kt = g.Node("Transpose", [Reshape(k, -1, t, heads, hd)], OnnxAttribute.Ints("perm", 0, 2, 3, 1));
            string vh = g.Node("Transpose", [Reshape(v, -1, t, heads, hd)], OnnxAttribute.Ints("perm", 0, 2, 1, 3));
            string scores = g.Node("Mul", [g.Node("MatMul", [qh, kt]), Scalar(1f / MathF.Sqrt(hd))]);
            string attn = g.Node("MatMul", [g.Node("Softmax", [scores], OnnxAttribute.Int("axis", -1)), vh]);
            attn = Reshape(g.Node("Transpose", [attn], OnnxAttribute.Ints("perm", 0, 2, 1, 3)), -1, t, d);
            x = g.Node("Add", [x, g.Node("Mul", [m[2], TernaryLinear(attn, b + "attention.wo", null, t)])]);   // x += gate_msa · wo(attn)

            // SwiGLU: x += gate_mlp · w2(silu(w1 h) · w3 h)
            h = Modulate(RmsNorm(x, b + "ffn_norm.weight"), m[3], m[4]);
            string gate = g.Node("Mul", [Silu(TernaryLinear(h, b + "feed_forward.w1", null, t)), TernaryLinear(h, b + "feed_forward.w3", null, t)]);
            return g.Node("Add", [x, g.Node("Mul", [m[5], TernaryLinear(gate, b + "feed_forward.w2", null, t)])]);
        }

        /// <summary>x · Wᵀ + bias of a full-precision linear <c>{name}.weight</c> (Out, In), <c>{name}.bias</c>.</summary>
        string FullLinear(string x, string name) => g.Node("Add", [FullWeight(x, name), g.Floats(name + ".bias", [Spec(name + ".weight").Shape[0]], Full(name + ".bias"))]);

        /// <summary>x · Wᵀ for the full-precision weight <c>{name}.weight</c> (Out, In), stored transposed (In, Out).</summary>
        string FullWeight(string x, string name)
        {
            var spec = Spec(name + ".weight");
            int outF = (int)spec.Shape[0], inF = (int)spec.Shape[1];
            return g.Node("MatMul", [x, g.Initializer(name + ".weight", OnnxType.Float, [inF, outF], 4L * inF * outF, s =>
            {
                float[] w = Full(name + ".weight");
                WriteTransposed(s, outF, inF, (n, k) => w[(long)n * inF + k]);
            })]);
        }

        /// <summary>
        /// The ternary linear <c>{prefix}</c> on x (…, K) → (…, Out) (+ bias): fp32 MatMul by alpha·W_tᵀ, or
        /// in <see cref="OnnxPrecision.Int8"/> per-token int8 codes × int8 trits. x is (N, tokens, K)
        /// when <paramref name="tokens"/> is given, else (N, K).
        /// </summary>
        string TernaryLinear(string x, string prefix, float[]? bias, int? tokens)
        {
            if (!c.Ternary)
            {
                string dense = FullWeight(x, prefix);
                return bias is null ? dense : g.Node("Add", [dense, g.Floats(prefix + ".bias", [bias.Length], bias)]);
            }
            var spec = Spec(prefix + ".weight");
            int outF = (int)spec.Shape[0], inF = (int)spec.Shape[1];
            float alpha = file.Floats(prefix + ".alpha")[0];
            // The trits are unpacked when the initializer is written, so the model is never held unpacked.
            sbyte[] Trits() => TernaryPacking.Unpack(file.Bytes(prefix + ".weight"), outF, inF);
            string y;
            if (precision == OnnxPrecision.Float32)
            {
                string wt = g.Initializer(prefix + ".weight", OnnxType.Float, [inF, outF], 4L * inF * outF,
                    s =>
                    {
                        sbyte[] trits = Trits();
                        WriteTransposed(s, outF, inF, (n, k) => alpha * trits[(long)n * inF + k]);
                    });
                y = g.Node("MatMul", [x, wt]);
            }
            else
            {
                // Per token: scale = max(absmax / 127, FLT_MIN); codes = round_even(x / scale) + 128 as uint8
                // (the zero point keeps MatMulInteger on its u8 × s8 kernels; the sums equal the int8 ones).
                string x2 = Reshape(x, -1, inF);                                                                 // (M, K)
                string absmax = g.Node("ReduceMax", [g.Node("Abs", [x2])], OnnxAttribute.Ints("axes", 1), OnnxAttribute.Int("keepdims", 0)); // (M)
                string scale = g.Node("Max", [g.Node("Div", [absmax, Scalar(127f)]), Scalar(1.17549435e-38f)]);  // FLT_MIN: a zero row gives codes 0
                string zeroPoints = g.Node("ConstantOfShape", [g.Node("Shape", [scale])], OnnxAttribute.Tensor("value", OnnxGraph.InlineTensor(OnnxType.UInt8, [128])));
                string codes = g.Node("QuantizeLinear", [x2, scale, zeroPoints], OnnxAttribute.Int("axis", 0));  // (M, K) uint8
                string wt = g.Initializer(prefix + ".weight", OnnxType.Int8, [inF, outF], (long)inF * outF,
                    s => WriteTransposed(s, outF, inF, Trits()));
                string sums = g.Node("MatMulInteger", [codes, wt, Const(OnnxType.UInt8, "zp128", [128])]);          // (M, Out) int32
                string rowScale = Unsqueeze(g.Node("Mul", [scale, Scalar(alpha)]), 1);                             // (M, 1) = scale · alpha
                y = g.Node("Mul", [g.Node("Cast", [sums], OnnxAttribute.Int("to", (long)OnnxType.Float)), rowScale]);
                if (tokens is int tk) y = Reshape(y, -1, tk, outF);
            }
            return bias is null ? y : g.Node("Add", [y, g.Floats(prefix + ".bias", [outF], bias)]);
        }

        /// <summary>RMSNorm over the last axis as ONNX Runtime's simplified-LayerNorm fusion expects it: x / √(mean(x²) + eps) · w.</summary>
        string RmsNorm(string x, string weightName)
        {
            float[] w = Full(weightName);
            string ms = g.Node("ReduceMean", [g.Node("Pow", [x, Scalar(2f)])], OnnxAttribute.Ints("axes", -1), OnnxAttribute.Int("keepdims", 1));
            string normed = g.Node("Div", [x, g.Node("Sqrt", [g.Node("Add", [ms, Scalar(RuntimeModel.NormEps)])])]);
            return g.Node("Mul", [normed, g.Floats(weightName, [w.Length], w)]);
        }

        string LayerNorm(string x, string name) =>
            g.Node("LayerNormalization", [x, g.Floats(name + ".weight", [c.HiddenSize], Full(name + ".weight")), g.Floats(name + ".bias", [c.HiddenSize], Full(name + ".bias"))],
                OnnxAttribute.Int("axis", -1), OnnxAttribute.Float("epsilon", RuntimeModel.NormEps));

        /// <summary>adaLN modulate: x · (1 + scale) + shift.</summary>
        string Modulate(string x, string shift, string scale) => g.Node("Add", [g.Node("Mul", [x, g.Node("Add", [scale, Scalar(1f)])]), shift]);

        string Silu(string x) => g.Node("Mul", [x, g.Node("Sigmoid", [x])]);

        /// <summary>(N, k·D) → k chunks (N, 1, D), broadcastable over the tokens.</summary>
        string[] Chunks(string mod, int k) =>
            g.Nodes("Split", [Reshape(mod, -1, k, c.HiddenSize), Const(OnnxType.Int64, $"split{k}", Enumerable.Repeat(1L, k).ToArray())], k, OnnxAttribute.Int("axis", 1));

        /// <summary>RoPE on (N, T, D): x · cos + swap_pairs(x) · sin, tables (T, D) tiled over the heads.</summary>
        string Rope(string x, string cos, string sin, string swap) =>
            g.Node("Add", [g.Node("Mul", [x, cos]), g.Node("Mul", [g.Node("Gather", [x, swap], OnnxAttribute.Int("axis", 2)), sin])]);

        (string Cos, string Sin, string Swap) RopeTables()
        {
            int t = c.Tokens, d = c.HiddenSize, hd = c.HeadDim;
            var rope = new RopeTable(t, hd);
            float[] cos = new float[t * d], sin = new float[t * d];
            for (int pos = 0; pos < t; pos++)
                for (int j = 0; j < d; j++)
                {
                    var (cs, sn) = rope.Angle(pos, j % hd / 2);
                    cos[pos * d + j] = cs;
                    sin[pos * d + j] = j % 2 == 0 ? -sn : sn;
                }
            long[] swap = Enumerable.Range(0, d).Select(j => (long)(j ^ 1)).ToArray();
            return (g.Floats("rope.cos", [t, d], cos), g.Floats("rope.sin", [t, d], sin), Const(OnnxType.Int64, "rope.swap", swap));
        }

        string Reshape(string x, params long[] shape) => g.Node("Reshape", [x, Const(OnnxType.Int64, "shape" + string.Join("_", shape), shape)]);

        string Unsqueeze(string x, long axis) => g.Node("Unsqueeze", [x, Const(OnnxType.Int64, $"axes{axis}", [axis])]);

        string Scalar(float v) => _constants.TryGetValue("f" + v.ToString("R"), out var n) ? n
            : _constants["f" + v.ToString("R")] = g.Scalar($"const_{_constants.Count}", v);

        /// <summary>A shared constant: int64 1-D values, or a uint8 scalar.</summary>
        string Const(OnnxType type, string key, long[] values)
        {
            if (_constants.TryGetValue(key, out var n)) return n;
            n = $"const_{_constants.Count}";
            _constants[key] = type == OnnxType.Int64 ? g.Int64s(n, values)
                : g.Initializer(n, type, [], 1, s => s.WriteByte((byte)values[0]));
            return n;
        }

        float[] Full(string name) => file.ReadFloats(name);

        ParameterSpec Spec(string name) => ParameterSchema.Enumerate(c).First(p => p.Name == name);

        /// <summary>Writes Wᵀ (K, N) of W (N, K) as float32, row by row.</summary>
        static void WriteTransposed(Stream s, int n, int k, Func<int, int, float> w)
        {
            var row = new float[n];
            for (int kk = 0; kk < k; kk++)
            {
                for (int nn = 0; nn < n; nn++) row[nn] = w(nn, kk);
                s.Write(MemoryMarshal.AsBytes(row.AsSpan()));
            }
        }

        static void WriteTransposed(Stream s, int n, int k, sbyte[] trits)
        {
            var row = new sbyte[n];
            for (int kk = 0; kk < k; kk++)
            {
                for (int nn = 0; nn < n; nn++) row[nn] = trits[(long)nn * k + kk];
                s.Write(MemoryMarshal.AsBytes(row.AsSpan()));
            }
        }
    }
}
