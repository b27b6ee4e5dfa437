using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace TerDiT.Runtime.Import;

/// <summary>
/// A file written by PyTorch's <c>torch.save</c> (the zip format, PyTorch ≥ 1.6): a
/// <see cref="StoredZip"/> whose <c>{prefix}/data.pkl</c> is read by <see cref="SafeUnpickler"/>
/// and whose storages are members <c>{prefix}/data/{key}</c>, each exactly <c>numel × element size</c>
/// bytes. Nothing is executed and tensor bytes are read in place (memory-mapped) when asked for;
/// each storage's CRC-32 is checked the first time it is read.
/// </summary>
public sealed class TorchCheckpoint : IDisposable
{
    readonly ByteSource _file;
    readonly HashSet<string> _verified = [];

    /// <summary>The unpickled object (a state dict, a namespace, …).</summary>
    public object? Root { get; }

    /// <summary>The file name, for messages.</summary>
    public string Name => _file.Name;

    TorchCheckpoint(ByteSource file, object? root) => (_file, Root) = (file, root);

    /// <summary>Maps and reads a <c>.pth</c> file.</summary>
    /// <exception cref="ImportFormatException">Not a valid PyTorch zip checkpoint, or it holds anything but tensors and plain data.</exception>
    public static TorchCheckpoint Open(string path)
    {
        var file = ByteSource.MapFile(path);
        try { return Read(file); }
        catch { file.Dispose(); throw; }
    }

    /// <summary>Reads a checkpoint from bytes; takes ownership of <paramref name="file"/> (disposed with the result).</summary>
    /// <exception cref="ImportFormatException">See <see cref="Open"/>.</exception>
    public static TorchCheckpoint Read(ByteSource file)
    {
        ImportFormatException Bad(string what) => new($"{file.Name}: {what}");
        var members = StoredZip.ReadDirectory(file);
        var pickles = members.Keys.Where(n => n == "data.pkl" || n.EndsWith("/data.pkl", StringComparison.Ordinal)).ToList();
        if (pickles.Count != 1)
            throw Bad(pickles.Count == 0 ? "no data.pkl member: not a PyTorch checkpoint (or one in the legacy pre-1.6 format)" : "more than one data.pkl member");
        string prefix = pickles[0][..^"data.pkl".Length];
        var pickle = members[pickles[0]];
        if (pickle.Length > SafeUnpickler.MaxPickleBytes) throw Bad($"data.pkl of {pickle.Length} bytes exceeds the {SafeUnpickler.MaxPickleBytes}-byte cap");
        StoredZip.VerifyCrc(file, pickle);

        var storages = new Dictionary<string, TorchStorage>(StringComparer.Ordinal);
        TorchStorage Resolve(TorchDType dtype, string key, long elements)
        {
            if (storages.TryGetValue(key, out var known))
                return known.DType == dtype && known.Elements == elements ? known
                    : throw Bad($"storage '{key}' is referenced as {known.Elements} × {known.DType} and as {elements} × {dtype}");
            if (!members.TryGetValue($"{prefix}data/{key}", out var member)) throw Bad($"storage '{key}' has no member '{prefix}data/{key}'");
            long bytes = elements > long.MaxValue / dtype.Size() ? -1 : elements * dtype.Size();
            if (bytes != member.Length)
                throw Bad($"storage '{key}' claims {elements} × {dtype} ({bytes} bytes) but its member holds {member.Length} bytes");
            return storages[key] = new TorchStorage(dtype, key, elements, member);
        }
        var root = SafeUnpickler.Load(file.Slice(pickle.Offset, (int)pickle.Length), file.Name, Resolve);
        return new TorchCheckpoint(file, root);
    }

    /// <summary>
    /// The root as a state dict: a (ordered) dict of parameter names to tensors, in file order.
    /// </summary>
    /// <exception cref="ImportFormatException">The root is not a dict of strings to tensors.</exception>
    public IReadOnlyList<KeyValuePair<string, TorchTensor>> StateDict()
    {
        if (Root is not PickleDict d) throw new ImportFormatException($"{Name}: holds {Kind(Root)}, not a state dict (a dict of tensors)");
        return d.Items.Select(kv => new KeyValuePair<string, TorchTensor>(
            kv.Key as string ?? throw new ImportFormatException($"{Name}: state dict key {kv.Key} is not a string"),
            kv.Value as TorchTensor ?? throw new ImportFormatException($"{Name}: state dict entry '{kv.Key}' is {Kind(kv.Value)}, not a tensor"))).ToList();
    }

    /// <summary>The root as an argparse namespace.</summary>
    /// <exception cref="ImportFormatException">The root is something else.</exception>
    public PickleNamespace Namespace() =>
        Root as PickleNamespace ?? throw new ImportFormatException($"{Name}: holds {Kind(Root)}, not an argparse.Namespace");

    /// <summary>
    /// The tensor's values as float32 in row-major order, from a Float32/Float16/BFloat16/Float64 storage
    /// (any strides). Float64 values are rounded to float32.
    /// </summary>
    /// <exception cref="ImportFormatException">The dtype is not floating point, or the storage fails its CRC check.</exception>
    public float[] ReadFloats(string what, TorchTensor t)
    {
        if (t.DType is not (TorchDType.Float32 or TorchDType.Float16 or TorchDType.BFloat16 or TorchDType.Float64))
            throw new ImportFormatException($"{Name}: tensor '{what}' is {t.DType}, expected a floating-point tensor");
        var result = new float[CheckedLength(what, t)];
        if (t.IsContiguous && result.Length > 0 && t.DType is TorchDType.Float32 or TorchDType.Float16)
        {
            var bytes = _file.Slice(t.Storage.Member.Offset + t.Offset * t.DType.Size(), result.Length * t.DType.Size());
            if (t.DType == TorchDType.Float32) MemoryMarshal.Cast<byte, float>(bytes).CopyTo(result);
            else TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(bytes), result);
            return result;
        }
        int i = 0;
        foreach (long e in Elements(t))
        {
            var b = _file.Slice(t.Storage.Member.Offset + e * t.DType.Size(), t.DType.Size());
            result[i++] = t.DType switch
            {
                TorchDType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(b),
                TorchDType.Float16 => (float)BinaryPrimitives.ReadHalfLittleEndian(b),
                TorchDType.BFloat16 => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(b) << 16),
                _ => (float)BinaryPrimitives.ReadDoubleLittleEndian(b),
            };
        }
        return result;
    }

    /// <summary>A UInt8 tensor's values in row-major order (any strides).</summary>
    /// <exception cref="ImportFormatException">The dtype is not UInt8, or the storage fails its CRC check.</exception>
    public byte[] ReadBytes(string what, TorchTensor t)
    {
        if (t.DType != TorchDType.UInt8) throw new ImportFormatException($"{Name}: tensor '{what}' is {t.DType}, expected UInt8");
        var result = new byte[CheckedLength(what, t)];
        if (t.IsContiguous && result.Length > 0)
        {
            _file.Slice(t.Storage.Member.Offset + t.Offset, result.Length).CopyTo(result);
            return result;
        }
        int i = 0;
        foreach (long e in Elements(t)) result[i++] = _file.Slice(t.Storage.Member.Offset + e, 1)[0];
        return result;
    }

    int CheckedLength(string what, TorchTensor t)
    {
        if (t.Elements > Array.MaxLength) throw new ImportFormatException($"{Name}: tensor '{what}' has {t.Elements} elements, more than one array holds");
        if (_verified.Add(t.Storage.Key)) StoredZip.VerifyCrc(_file, t.Storage.Member);
        return (int)t.Elements;
    }

    /// <summary>Storage element indices of the tensor's elements in row-major order.</summary>
    static IEnumerable<long> Elements(TorchTensor t)
    {
        if (t.Elements == 0) yield break;
        int dims = t.Shape.Length;
        var index = new long[dims];
        long at = t.Offset;
        for (long n = 0; n < t.Elements; n++)
        {
            yield return at;
            for (int d = dims - 1; d >= 0; d--)
            {
                if (++index[d] < t.Shape[d]) { at += t.Stride[d]; break; }
                at -= (t.Shape[d] - 1) * t.Stride[d];
                index[d] = 0;
            }
        }
    }

    static string Kind(object? v) => v switch
    {
        null => "None",
        PickleDict => "a dict",
        PickleNamespace => "an argparse.Namespace",
        TorchTensor => "a tensor",
        PickleTuple => "a tuple",
        _ => $"a {v.GetType().Name}",
    };

    public void Dispose() => _file.Dispose();
}
