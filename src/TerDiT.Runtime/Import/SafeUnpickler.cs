using System.Buffers.Binary;
using System.Text;

namespace TerDiT.Runtime.Import;

/// <summary>
/// Reads the pickles inside PyTorch checkpoints without executing anything. Python's unpickler calls
/// whatever the stream names (a pickle can run <c>posix.system</c>); this one is a small stack machine
/// that accepts only the binary opcodes <c>torch.save</c> emits for state dicts and argparse namespaces
/// (protocols 2–5) and only four kinds of globals:
/// <list type="bullet">
/// <item><c>collections.OrderedDict</c>, called with no arguments (its items follow as SETITEMS);</item>
/// <item><c>torch._utils._rebuild_tensor_v2</c>, called with (storage, offset, size, stride,
/// requires_grad, empty hooks[, None]) → <see cref="TorchTensor"/>;</item>
/// <item><c>torch.{Float,Double,Half,BFloat16,Byte,Char,Short,Int,Long,Bool}Storage</c>, only inside
/// a persistent id <c>('storage', type, key, location, numel)</c>, resolved by the caller;</item>
/// <item><c>argparse.Namespace</c>, created with no arguments and given a dict of attributes.</item>
/// </list>
/// Anything else — another global, another call, another opcode — is refused with an
/// <see cref="ImportFormatException"/> naming the file, the byte offset and what was refused.
/// Bounds: the pickle is at most <see cref="MaxPickleBytes"/>; every length is checked against the
/// bytes left before anything is allocated; integers are at most 64 bits; no recursion, so nesting
/// depth costs no stack.
/// </summary>
public static class SafeUnpickler
{
    /// <summary>Largest pickle accepted (a 7B-parameter state dict's pickle is a few hundred KB).</summary>
    public const int MaxPickleBytes = 64 << 20;

    /// <summary>Resolves a persistent id <c>('storage', dtype, key, location, numel)</c> to a storage.</summary>
    public delegate TorchStorage StorageResolver(TorchDType dtype, string key, long elements);

    sealed class Mark { public static readonly Mark Instance = new(); }
    enum Global { OrderedDict, RebuildTensor, Namespace }
    sealed record StorageType(TorchDType DType);

    /// <summary>Runs the pickle; returns the object at STOP.</summary>
    /// <param name="pickle">The pickle bytes (e.g. a checkpoint's <c>data.pkl</c>).</param>
    /// <param name="where">File name for error messages.</param>
    /// <param name="storages">Resolves persistent ids; null refuses any (a plain pickle such as <c>model_args.pth</c>).</param>
    public static object? Load(ReadOnlySpan<byte> pickle, string where, StorageResolver? storages)
    {
        if (pickle.Length > MaxPickleBytes) throw new ImportFormatException($"{where}: pickle of {pickle.Length} bytes exceeds the {MaxPickleBytes}-byte cap");
        var stack = new List<object?>();
        var marks = new Stack<int>();
        var memo = new Dictionary<uint, object?>();
        int pos = 0, at = 0;

        ImportFormatException Bad(string what) => new($"{where}: pickle byte {at}: {what}");
        ReadOnlySpan<byte> Take(ReadOnlySpan<byte> p, int n)
        {
            if (n < 0 || n > p.Length - pos) throw Bad($"needs {n} bytes but {p.Length - pos} remain (truncated pickle?)");
            var s = p.Slice(pos, n);
            pos += n;
            return s;
        }
        object? Pop()
        {
            if (stack.Count == 0 || stack[^1] is Mark) throw Bad("stack underflow");
            var v = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            return v;
        }
        List<object?> PopToMark()
        {
            if (marks.Count == 0) throw Bad("no MARK to pop to");
            int m = marks.Pop();
            var items = stack.GetRange(m + 1, stack.Count - m - 1);
            stack.RemoveRange(m, stack.Count - m);
            return items;
        }
        string Text(ReadOnlySpan<byte> bytes)
        {
            try { return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes); }
            catch (DecoderFallbackException) { throw Bad("string is not valid UTF-8"); }
        }
        void Push(object? v) => stack.Add(v);

        while (true)
        {
            at = pos;
            if (pos >= pickle.Length) throw Bad("pickle ends without STOP (truncated?)");
            byte op = pickle[pos++];
            switch (op)
            {
                case 0x80: // PROTO
                    if (Take(pickle, 1)[0] is < 2 or > 5) throw Bad($"pickle protocol {pickle[pos - 1]} is not supported (2-5 are)");
                    break;
                case 0x95: // FRAME: a length hint only
                    long frame = BinaryPrimitives.ReadInt64LittleEndian(Take(pickle, 8));
                    if (frame < 0 || frame > pickle.Length - pos) throw Bad($"frame of {frame} bytes runs past the pickle's end");
                    break;
                case (byte)'.': // STOP
                    var result = Pop();
                    if (stack.Count != 0 || marks.Count != 0) throw Bad("STOP with values left on the stack");
                    if (pos != pickle.Length) throw Bad($"{pickle.Length - pos} bytes after STOP");
                    return result;
                case (byte)'(': marks.Push(stack.Count); Push(Mark.Instance); break;
                case (byte)'0': Pop(); break; // POP
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(pickle, 4))); break;
                case (byte)'K': Push((long)Take(pickle, 1)[0]); break;
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(pickle, 2))); break;
                case 0x8a: // LONG1: little-endian two's complement of n bytes
                {
                    int n = Take(pickle, 1)[0];
                    if (n > 8) throw Bad($"integer of {n} bytes exceeds 64 bits");
                    var b = Take(pickle, n);
                    long v = 0;
                    for (int i = n - 1; i >= 0; i--) v = v << 8 | b[i];
                    if (n is > 0 and < 8 && (b[n - 1] & 0x80) != 0) v -= 1L << (8 * n); // sign
                    Push(v);
                    break;
                }
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(pickle, 8))); break;
                case (byte)'X': Push(Text(Take(pickle, Length(BinaryPrimitives.ReadUInt32LittleEndian(Take(pickle, 4)))))); break;
                case 0x8c: Push(Text(Take(pickle, Take(pickle, 1)[0]))); break; // SHORT_BINUNICODE
                case 0x8d: Push(Text(Take(pickle, Length(BinaryPrimitives.ReadUInt64LittleEndian(Take(pickle, 8)))))); break; // BINUNICODE8
                case (byte)'B': Push(Take(pickle, Length(BinaryPrimitives.ReadUInt32LittleEndian(Take(pickle, 4)))).ToArray()); break; // BINBYTES
                case (byte)'C': Push(Take(pickle, Take(pickle, 1)[0]).ToArray()); break; // SHORT_BINBYTES
                case (byte)')': Push(new PickleTuple([])); break;
                case (byte)'t': Push(new PickleTuple(PopToMark())); break;
                case 0x85: { var a = Pop(); Push(new PickleTuple([a])); break; }
                case 0x86: { var b = Pop(); var a = Pop(); Push(new PickleTuple([a, b])); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new PickleTuple([a, b, c])); break; }
                case (byte)']': Push(new List<object?>()); break;
                case (byte)'a': { var v = Pop(); ListAt(stack.Count - 1).Add(v); break; }
                case (byte)'e': { var items = PopToMark(); ListAt(stack.Count - 1).AddRange(items); break; }
                case (byte)'}': Push(new PickleDict()); break;
                case (byte)'s': { var v = Pop(); var k = Pop(); DictAt(stack.Count - 1).Set(Key(k), v); break; }
                case (byte)'u':
                {
                    var items = PopToMark();
                    if (items.Count % 2 != 0) throw Bad("SETITEMS with an odd number of values");
                    var d = DictAt(stack.Count - 1);
                    for (int i = 0; i < items.Count; i += 2) d.Set(Key(items[i]), items[i + 1]);
                    break;
                }
                case (byte)'q': memo[Take(pickle, 1)[0]] = Top(); break;                                         // BINPUT
                case (byte)'r': memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(pickle, 4))] = Top(); break;   // LONG_BINPUT
                case 0x94: memo[(uint)memo.Count] = Top(); break;                                                  // MEMOIZE
                case (byte)'h': Push(Memo(Take(pickle, 1)[0])); break;                                            // BINGET
                case (byte)'j': Push(Memo(BinaryPrimitives.ReadUInt32LittleEndian(Take(pickle, 4)))); break;      // LONG_BINGET
                case (byte)'c': // GLOBAL "module\nname\n"
                {
                    string module = Line(pickle), name = Line(pickle);
                    Push(Resolve(module, name));
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    var name = Pop() as string ?? throw Bad("STACK_GLOBAL name is not a string");
                    var module = Pop() as string ?? throw Bad("STACK_GLOBAL module is not a string");
                    Push(Resolve(module, name));
                    break;
                }
                case (byte)'R': // REDUCE
                {
                    var args = Pop() as PickleTuple ?? throw Bad("REDUCE arguments are not a tuple");
                    Push(Pop() switch
                    {
                        Global.OrderedDict when args.Items.Count == 0 => new PickleDict(),
                        Global.RebuildTensor => RebuildTensor(args),
                        var f => throw Bad($"call of {Describe(f)} with {args.Items.Count} argument(s) is refused"),
                    });
                    break;
                }
                case 0x81: // NEWOBJ
                {
                    var args = Pop() as PickleTuple ?? throw Bad("NEWOBJ arguments are not a tuple");
                    var cls = Pop();
                    if (args.Items.Count != 0) throw Bad($"{Describe(cls)} created with arguments is refused");
                    Push(cls switch
                    {
                        Global.Namespace => new PickleNamespace(),
                        Global.OrderedDict => new PickleDict(),
                        _ => throw Bad($"creating {Describe(cls)} is refused"),
                    });
                    break;
                }
                case (byte)'b': // BUILD
                {
                    var state = Pop();
                    switch (Top(), state)
                    {
                        case (PickleNamespace ns, PickleDict fields):
                            foreach (var (k, v) in fields.Items)
                                ns.Fields[k as string ?? throw Bad("namespace attribute name is not a string")] = v;
                            break;
                        case (PickleDict d, PickleDict attributes):
                            d.Attributes = attributes;
                            break;
                        default: throw Bad($"setting the state of {Describe(Top())} from {Describe(state)} is refused");
                    }
                    break;
                }
                case (byte)'Q': // BINPERSID
                {
                    var pid = Pop() as PickleTuple ?? throw Bad("persistent id is not a tuple");
                    if (storages is null) throw Bad("this file may not reference tensor storages");
                    if (pid.Items is not ["storage", StorageType type, string key, string location, long elements])
                        throw Bad("persistent id is not ('storage', type, key, location, numel)");
                    if (elements < 0) throw Bad($"storage '{key}' has a negative element count");
                    _ = location; // where the tensor lived when saved ("cpu", "cuda:0"): everything is read to the CPU
                    Push(storages(type.DType, key, elements));
                    break;
                }
                default:
                    throw Bad($"opcode 0x{op:x2}{(op is >= 0x20 and < 0x7f ? $" '{(char)op}'" : "")} is not allowed in a checkpoint");
            }
        }

        object? Top() => stack.Count > 0 && stack[^1] is not Mark ? stack[^1] : throw Bad("stack underflow");
        object? Memo(uint key) => memo.TryGetValue(key, out var v) ? v : throw Bad($"memo entry {key} was never stored");
        List<object?> ListAt(int i) => i >= 0 && stack[i] is List<object?> l ? l : throw Bad("APPEND to something that is not a list");
        PickleDict DictAt(int i) => i >= 0 && stack[i] is PickleDict d ? d : throw Bad("SETITEM on something that is not a dict");
        object Key(object? k) => k switch
        {
            string or long or bool => k,
            _ => throw Bad($"dict key {Describe(k)} is not a string, integer or bool"),
        };
        int Length(ulong n) => n <= int.MaxValue ? (int)n : throw Bad($"length {n} exceeds the pickle");
        string Line(ReadOnlySpan<byte> p)
        {
            int end = p[pos..].IndexOf((byte)'\n');
            if (end < 0 || end > 256) throw Bad("GLOBAL name is not a short newline-terminated line");
            var s = Encoding.ASCII.GetString(p.Slice(pos, end));
            pos += end + 1;
            return s;
        }
        object Resolve(string module, string name) => (module, name) switch
        {
            ("collections", "OrderedDict") => Global.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2") => Global.RebuildTensor,
            ("argparse", "Namespace") => Global.Namespace,
            ("torch", _) when TorchDTypes.StorageNames.TryGetValue(name, out var t) => new StorageType(t),
            _ => throw Bad($"global '{module}.{name}' is refused: a checkpoint may only reference tensors, storages, OrderedDict and argparse.Namespace (a pickle that names other globals can run code)"),
        };
        TorchTensor RebuildTensor(PickleTuple args)
        {
            if (args.Items is not [TorchStorage storage, long offset, PickleTuple size, PickleTuple stride, bool, PickleDict hooks, ..] rest || rest.Count > 7
                || (rest.Count == 7 && rest[6] is not null))
                throw Bad("_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, requires_grad, hooks[, None])");
            if (hooks.Count != 0) throw Bad("a tensor with backward hooks is refused");
            try { return new TorchTensor(storage, offset, Longs(size), Longs(stride)); }
            catch (ArgumentException e) { throw Bad(e.Message); }
        }
        long[] Longs(PickleTuple t)
        {
            if (t.Items.Count > TorchTensor.MaxDims) throw Bad($"tensor has {t.Items.Count} dimensions, at most {TorchTensor.MaxDims} are accepted");
            return t.Items.Select(v => v as long? ?? throw Bad("tensor size or stride is not an integer")).ToArray();
        }
    }

    static string Describe(object? v) => v switch
    {
        null => "None",
        Global g => g switch { Global.OrderedDict => "collections.OrderedDict", Global.RebuildTensor => "torch._utils._rebuild_tensor_v2", _ => "argparse.Namespace" },
        StorageType s => $"a {s.DType} storage type",
        string => "a string",
        long or bool or double => v.GetType().Name.ToLowerInvariant(),
        PickleTuple => "a tuple",
        PickleDict => "a dict",
        List<object?> => "a list",
        PickleNamespace => "a namespace",
        TorchTensor => "a tensor",
        TorchStorage => "a storage",
        _ => v.GetType().Name,
    };
}
