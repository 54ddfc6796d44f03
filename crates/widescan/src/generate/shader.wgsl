// Target generation on the GPU: a port of src/permutation.rs and
// AddressSpace::locate. It must stay bit-identical to the CPU reference; the
// differential test in tests/gpu_differential.rs checks millions of addresses.
//
// WGSL has no 64-bit integers, so 128-bit values are vec4<u32> with .x holding
// bits 0..31 (little-endian lanes) and 64-bit Feistel halves are vec2<u32>
// (.x low word, .y high word). Shifts by >= 32 are never issued: WGSL takes the
// shift amount modulo 32.

struct Params {
    start: vec4<u32>,   // first scan index
    n: vec4<u32>,       // size of the target space
    keys0: vec4<u32>,   // k0 of rounds 0..3
    keys1: vec4<u32>,   // k1 of rounds 0..3
    count: u32,         // addresses in this dispatch
    lo_bits: u32,       // width of the low Feistel half
    hi_bits: u32,       // width of the high Feistel half
    narrow: u32,        // 1 when the domain has at most 64 bits
    num_prefixes: u32,  // entries in `table`
    pow2: u32,          // 1 when n is a power of two (no cycle-walking)
    row_stride: u32,    // invocations per dispatch row (2-D dispatch)
    _pad: u32,
}

struct Entry {
    start: vec4<u32>,   // concatenated index where the prefix starts
    network: vec4<u32>, // its network address
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<Entry>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<u32>>;

// lowbias32 (Chris Wellons), as permutation::mix32.
fn mix32(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

fn add_u32(a: vec4<u32>, b: u32) -> vec4<u32> {
    let x = a.x + b;
    var c = select(0u, 1u, x < b);
    let y = a.y + c;
    c = select(0u, 1u, c == 1u && y == 0u);
    let z = a.z + c;
    c = select(0u, 1u, c == 1u && z == 0u);
    let w = a.w + c;
    return vec4<u32>(x, y, z, w);
}

fn sub128(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    let x = a.x - b.x;
    var br = select(0u, 1u, a.x < b.x);
    let y = a.y - b.y - br;
    br = select(0u, 1u, a.y < b.y || (a.y == b.y && br == 1u));
    let z = a.z - b.z - br;
    br = select(0u, 1u, a.z < b.z || (a.z == b.z && br == 1u));
    let w = a.w - b.w - br;
    return vec4<u32>(x, y, z, w);
}

fn lt128(a: vec4<u32>, b: vec4<u32>) -> bool {
    if (a.w != b.w) { return a.w < b.w; }
    if (a.z != b.z) { return a.z < b.z; }
    if (a.y != b.y) { return a.y < b.y; }
    return a.x < b.x;
}

fn shr128(v: vec4<u32>, s: u32) -> vec4<u32> {
    if (s >= 128u) { return vec4<u32>(0u); }
    let w = s / 32u;
    let b = s % 32u;
    var words = array<u32, 8>(v.x, v.y, v.z, v.w, 0u, 0u, 0u, 0u);
    var r = array<u32, 4>(0u, 0u, 0u, 0u);
    for (var i = 0u; i < 4u; i++) {
        let cur = words[i + w];
        let above = words[i + w + 1u];
        r[i] = select((cur >> b) | (above << (32u - b)), cur, b == 0u);
    }
    return vec4<u32>(r[0], r[1], r[2], r[3]);
}

fn shl128(v: vec4<u32>, s: u32) -> vec4<u32> {
    if (s >= 128u) { return vec4<u32>(0u); }
    let w = s / 32u;
    let b = s % 32u;
    var words = array<u32, 8>(0u, 0u, 0u, 0u, v.x, v.y, v.z, v.w);
    var r = array<u32, 4>(0u, 0u, 0u, 0u);
    for (var i = 0u; i < 4u; i++) {
        let cur = words[i + 4u - w];
        let below = words[i + 3u - w];
        r[i] = select((cur << b) | (below >> (32u - b)), cur, b == 0u);
    }
    return vec4<u32>(r[0], r[1], r[2], r[3]);
}

// Mask of the low `bits` (0..=64) bits of a 64-bit half.
fn mask64(bits: u32) -> vec2<u32> {
    if (bits >= 64u) { return vec2<u32>(0xffffffffu, 0xffffffffu); }
    if (bits >= 32u) { return vec2<u32>(0xffffffffu, (1u << (bits - 32u)) - 1u); }
    return vec2<u32>((1u << bits) - 1u, 0u);
}

// The round function of permutation::Permutation::round.
fn round_fn(v: vec2<u32>, k0: u32, k1: u32) -> vec2<u32> {
    if (params.narrow == 1u) {
        return vec2<u32>(mix32(v.x ^ k0), 0u);
    }
    let t0 = mix32(v.x ^ k0);
    let t1 = mix32(v.y ^ k1 ^ t0);
    return vec2<u32>(mix32(t0 ^ t1 ^ k1), t1);
}

fn feistel(x: vec4<u32>) -> vec4<u32> {
    let mb = mask64(params.lo_bits);
    let ma = mask64(params.hi_bits);
    var lo = vec2<u32>(x.x, x.y) & mb;
    let h = shr128(x, params.lo_bits);
    var hi = vec2<u32>(h.x, h.y);
    for (var r = 0u; r < 4u; r++) {
        let k0 = params.keys0[r];
        let k1 = params.keys1[r];
        if (r % 2u == 0u) {
            lo ^= round_fn(hi, k0, k1) & mb;
        } else {
            hi ^= round_fn(lo, k0, k1) & ma;
        }
    }
    return shl128(vec4<u32>(hi.x, hi.y, 0u, 0u), params.lo_bits) | vec4<u32>(lo.x, lo.y, 0u, 0u);
}

fn bswap(x: u32) -> u32 {
    return (x << 24u) | ((x & 0xff00u) << 8u) | ((x >> 8u) & 0xff00u) | (x >> 24u);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * params.row_stride;
    if (i >= params.count) { return; }
    var y = feistel(add_u32(params.start, i));
    if (params.pow2 == 0u) {
        // Cycle-walking: terminates because the Feistel network is a bijection on
        // [0, 2^k), so the cycle through `y` comes back below n.
        while (!lt128(y, params.n)) {
            y = feistel(y);
        }
    }
    var base = 0u;
    var len = params.num_prefixes;
    while (len > 1u) {
        let half = len / 2u;
        if (!lt128(y, table[base + half].start)) {
            base += half;
        }
        len -= half;
    }
    let e = table[base];
    let a = e.network | sub128(y, e.start);
    // Network byte order in memory: the host reads the buffer as [u8; 16] addresses.
    out[i] = vec4<u32>(bswap(a.w), bswap(a.z), bswap(a.y), bswap(a.x));
}
