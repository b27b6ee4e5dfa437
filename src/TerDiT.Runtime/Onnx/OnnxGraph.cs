using System.Runtime.InteropServices;

namespace TerDiT.Runtime.Onnx;

/// <summary>ONNX tensor element types used by the exporter (the values of <c>TensorProto.DataType</c>).</summary>
public enum OnnxType
{
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    Int32 = 6,
    Int64 = 7,
}

/// <summary>ONNX node attributes (<c>AttributeProto</c>: name = 1, f = 2, i = 3, t = 5, ints = 8, type = 20).</summary>
internal static class OnnxAttribute
{
    public static ProtoMessage Int(string name, long v) => new ProtoMessage().String(1, name).Int(3, v).Int(20, 2);
    public static ProtoMessage Float(string name, float v) => new ProtoMessage().String(1, name).Float(2, v).Int(20, 1);
    public static ProtoMessage Tensor(string name, ProtoMessage tensor) => new ProtoMessage().String(1, name).Message(5, tensor).Int(20, 4);

    public static ProtoMessage Ints(string name, params long[] v)
    {
        var m = new ProtoMessage().String(1, name);
        foreach (long x in v) m.Int(8, x);
        return m.Int(20, 7);
    }
}

/// <summary>
/// Builds one ONNX graph (<c>GraphProto</c>) node by node in topological order, and writes it as a
/// <c>ModelProto</c> (IR version 8, one default-domain opset). Every node gets a fresh output name;
/// initializers carry the names they are given. With an external-data stream, each initializer's
/// bytes go there at once (at a 4096-byte aligned offset, so a runtime may map them) and the
/// tensor records location, offset and length, as the ONNX external-data convention says (except
/// initializers under 1 KiB, such as shapes, which stay inline); this is
/// how models past protobuf's 2 GiB message limit are stored. Without one, initializer bytes are
/// written inside the model when <see cref="WriteModel"/> runs.
/// </summary>
internal sealed class OnnxGraph(string name, Stream? externalData = null, string? externalFileName = null)
{
    const int ExternalAlignment = 4096;
    /// <summary>Initializers smaller than this stay inline even with external data: shapes and axes are read while the graph is checked.</summary>
    const int InlineBelow = 1024;

    readonly List<ProtoMessage> _nodes = [], _initializers = [], _inputs = [], _outputs = [];
    readonly HashSet<string> _names = [];
    int _counter;

    /// <summary>A node with one output; returns the output's name.</summary>
    public string Node(string op, string[] inputs, params ProtoMessage[] attributes) => Nodes(op, inputs, 1, attributes)[0];

    /// <summary>A node with one output named <paramref name="output"/> (a graph output's name); returns it.</summary>
    public string Named(string op, string output, string[] inputs, params ProtoMessage[] attributes) => Emit(op, inputs, [output], attributes)[0];

    /// <summary>A node with <paramref name="outputs"/> outputs; returns their names. An empty input name is an omitted optional input.</summary>
    public string[] Nodes(string op, string[] inputs, int outputs, params ProtoMessage[] attributes)
    {
        string id = $"{op}_{_counter}";
        return Emit(op, inputs, Enumerable.Range(0, outputs).Select(i => outputs == 1 ? id : $"{id}_{i}").ToArray(), attributes);
    }

    string[] Emit(string op, string[] inputs, string[] names, ProtoMessage[] attributes)
    {
        string id = $"{op}_{_counter++}";
        // NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5.
        var node = new ProtoMessage();
        foreach (var i in inputs) node.String(1, i);
        foreach (var o in names) node.String(2, o);
        node.String(3, id).String(4, op);
        foreach (var a in attributes) node.Message(5, a);
        _nodes.Add(node);
        return names;
    }

    /// <summary>
    /// An initializer of the given element type and shape whose <paramref name="bytes"/> raw
    /// little-endian bytes <paramref name="write"/> produces (row-major, exactly that many).
    /// </summary>
    public string Initializer(string tensorName, OnnxType type, long[] dims, long bytes, Action<Stream> write)
    {
        if (!_names.Add(tensorName)) throw new ArgumentException($"initializer '{tensorName}' defined twice");
        var t = TensorHeader(tensorName, type, dims);
        if (externalData is null || bytes < InlineBelow) t.Blob(9, bytes, write); // raw_data
        else
        {
            long offset = (externalData.Position + ExternalAlignment - 1) / ExternalAlignment * ExternalAlignment;
            externalData.SetLength(Math.Max(externalData.Length, offset));
            externalData.Position = offset;
            write(externalData);
            if (externalData.Position - offset != bytes)
                throw new InvalidOperationException($"initializer '{tensorName}' wrote {externalData.Position - offset} bytes, declared {bytes}");
            // external_data = 13 (StringStringEntryProto: key = 1, value = 2), data_location = 14 (EXTERNAL = 1).
            foreach (var (key, value) in new[] { ("location", externalFileName!), ("offset", offset.ToString()), ("length", bytes.ToString()) })
                t.Message(13, new ProtoMessage().String(1, key).String(2, value));
            t.Int(14, 1);
        }
        _initializers.Add(t);
        return tensorName;
    }

    /// <summary>A float initializer from values in memory.</summary>
    public string Floats(string tensorName, long[] dims, float[] values) =>
        Initializer(tensorName, OnnxType.Float, dims, values.LongLength * 4, s => s.Write(MemoryMarshal.AsBytes(values.AsSpan())));

    /// <summary>A 1-D int64 initializer (shapes, axes, indices).</summary>
    public string Int64s(string tensorName, params long[] values) =>
        Initializer(tensorName, OnnxType.Int64, [values.Length], values.Length * 8L, s => s.Write(MemoryMarshal.AsBytes(values.AsSpan())));

    /// <summary>A scalar float initializer.</summary>
    public string Scalar(string tensorName, float value) =>
        Initializer(tensorName, OnnxType.Float, [], 4, s => s.Write(BitConverter.GetBytes(value)));

    /// <summary>A one-element tensor value for an attribute (<c>ConstantOfShape</c>'s value), always inline.</summary>
    public static ProtoMessage InlineTensor(OnnxType type, byte[] raw) =>
        TensorHeader("", type, [raw.Length / ElementSize(type)]).Bytes(9, raw);

    static ProtoMessage TensorHeader(string tensorName, OnnxType type, long[] dims)
    {
        // TensorProto: dims = 1, data_type = 2, name = 8.
        var t = new ProtoMessage();
        foreach (long d in dims) t.Int(1, d);
        t.Int(2, (int)type);
        if (tensorName.Length > 0) t.String(8, tensorName);
        return t;
    }

    static int ElementSize(OnnxType type) => type switch
    {
        OnnxType.Float or OnnxType.Int32 => 4,
        OnnxType.Int64 => 8,
        _ => 1,
    };

    /// <summary>A graph input; each dimension is a number or a symbolic name (a string).</summary>
    public string Input(string inputName, OnnxType type, params object[] dims)
    {
        _inputs.Add(ValueInfo(inputName, type, dims));
        return inputName;
    }

    /// <summary>Declares <paramref name="value"/> a graph output under its own name.</summary>
    public void Output(string value, OnnxType type, params object[] dims) => _outputs.Add(ValueInfo(value, type, dims));

    static ProtoMessage ValueInfo(string valueName, OnnxType type, object[] dims)
    {
        // ValueInfoProto: name = 1, type = 2; TypeProto.tensor_type = 1; Tensor: elem_type = 1, shape = 2;
        // TensorShapeProto.dim = 1; Dimension: dim_value = 1, dim_param = 2.
        var shape = new ProtoMessage();
        foreach (var d in dims)
            shape.Message(1, d is string p ? new ProtoMessage().String(2, p) : new ProtoMessage().Int(1, Convert.ToInt64(d)));
        var tensor = new ProtoMessage().Int(1, (int)type).Message(2, shape);
        return new ProtoMessage().String(1, valueName).Message(2, new ProtoMessage().Message(1, tensor));
    }

    /// <summary>Writes the <c>ModelProto</c>: IR version 8, the default opset at <paramref name="opset"/>, this graph.</summary>
    public void WriteModel(Stream stream, int opset, string producer, string producerVersion, string doc)
    {
        // GraphProto: node = 1, name = 2, initializer = 5, input = 11, output = 12.
        var graph = new ProtoMessage();
        foreach (var n in _nodes) graph.Message(1, n);
        graph.String(2, name);
        foreach (var t in _initializers) graph.Message(5, t);
        foreach (var i in _inputs) graph.Message(11, i);
        foreach (var o in _outputs) graph.Message(12, o);
        // ModelProto: ir_version = 1, producer_name = 2, producer_version = 3, doc_string = 6, graph = 7,
        // opset_import = 8 (OperatorSetIdProto: domain = 1, version = 2).
        var model = new ProtoMessage().Int(1, 8).String(2, producer).String(3, producerVersion).String(6, doc)
            .Message(7, graph).Message(8, new ProtoMessage().String(1, "").Int(2, opset));
        model.WriteTo(stream);
    }
}
