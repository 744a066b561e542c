//! A tiny GGUF writer for the unit tests: builds files of any version with any metadata and
//! tensors in memory, and can damage a tensor's directory entry on purpose.

use super::gguf::{Array, GgmlType, Value, ALIGNMENT_KEY, DEFAULT_ALIGNMENT};

/// A tensor to write: its data is a deterministic byte pattern of the right size.
pub struct TestTensor {
    pub name: String,
    pub ggml_type: GgmlType,
    pub dims: Vec<u64>,
    pub data: Vec<u8>,
}

impl TestTensor {
    pub fn new(name: &str, ggml_type: GgmlType, dims: &[u64]) -> Self {
        let n: u64 = dims.iter().product();
        let len = ggml_type.bytes_for(n).expect("whole blocks") as usize;
        let seed = name
            .bytes()
            .fold(7u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
        TestTensor {
            name: name.to_string(),
            ggml_type,
            dims: dims.to_vec(),
            data: (0..len).map(|i| seed.wrapping_add(i as u8)).collect(),
        }
    }
}

type Patch = Box<dyn FnOnce(&mut Vec<u8>)>;

pub struct GgufWriter {
    version: u32,
    alignment: u64,
    kvs: Vec<(String, Value)>,
    tensors: Vec<TestTensor>,
    patches: Vec<(usize, Patch)>,
}

impl GgufWriter {
    pub fn new(version: u32) -> Self {
        GgufWriter {
            version,
            alignment: DEFAULT_ALIGNMENT,
            kvs: Vec::new(),
            tensors: Vec::new(),
            patches: Vec::new(),
        }
    }

    pub fn kv(&mut self, key: &str, value: Value) -> &mut Self {
        self.kvs.push((key.to_string(), value));
        self
    }

    /// Sets `general.alignment` and lays the data out with it.
    pub fn alignment(&mut self, alignment: u32) -> &mut Self {
        self.alignment = u64::from(alignment);
        self.kv(ALIGNMENT_KEY, Value::U32(alignment))
    }

    pub fn tensor(&mut self, tensor: TestTensor) -> &mut Self {
        self.tensors.push(tensor);
        self
    }

    /// Changes the bytes of tensor `index`'s directory entry that follow its name (n_dims,
    /// dims, type, offset) before they are written.
    pub fn patch_entry(&mut self, index: usize, patch: impl FnOnce(&mut Vec<u8>) + 'static) {
        self.patches.push((index, Box::new(patch)));
    }

    pub fn build(self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.kvs.len() as u64).to_le_bytes());
        for (key, value) in &self.kvs {
            write_str(&mut out, key);
            out.extend(value_type_id(value).to_le_bytes());
            write_value(&mut out, value);
        }
        let mut patches = self.patches;
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for (i, t) in self.tensors.iter().enumerate() {
            write_str(&mut out, &t.name);
            let mut entry = Vec::new();
            entry.extend((t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                entry.extend(d.to_le_bytes());
            }
            entry.extend(t.ggml_type.id().to_le_bytes());
            entry.extend(offset.to_le_bytes());
            while let Some(p) = patches.iter().position(|(index, _)| *index == i) {
                let (_, patch) = patches.remove(p);
                patch(&mut entry);
            }
            out.extend(entry);
            offsets.push(offset);
            offset = (offset + t.data.len() as u64).next_multiple_of(self.alignment);
        }
        if !self.tensors.is_empty() {
            let data_start = (out.len() as u64).next_multiple_of(self.alignment) as usize;
            for (t, off) in self.tensors.iter().zip(offsets) {
                out.resize(data_start + off as usize, 0);
                out.extend(&t.data);
            }
        }
        out
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn value_type_id(value: &Value) -> u32 {
    match value {
        Value::U8(_) => 0,
        Value::I8(_) => 1,
        Value::U16(_) => 2,
        Value::I16(_) => 3,
        Value::U32(_) => 4,
        Value::I32(_) => 5,
        Value::F32(_) => 6,
        Value::Bool(_) => 7,
        Value::String(_) => 8,
        Value::Array(_) => 9,
        Value::U64(_) => 10,
        Value::I64(_) => 11,
        Value::F64(_) => 12,
    }
}

fn array_type_id(array: &Array) -> u32 {
    match array {
        Array::U8(_) => 0,
        Array::I8(_) => 1,
        Array::U16(_) => 2,
        Array::I16(_) => 3,
        Array::U32(_) => 4,
        Array::I32(_) => 5,
        Array::F32(_) => 6,
        Array::Bool(_) => 7,
        Array::String(_) => 8,
        Array::Array(_) => 9,
        Array::U64(_) => 10,
        Array::I64(_) => 11,
        Array::F64(_) => 12,
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::U8(v) => out.extend(v.to_le_bytes()),
        Value::I8(v) => out.extend(v.to_le_bytes()),
        Value::U16(v) => out.extend(v.to_le_bytes()),
        Value::I16(v) => out.extend(v.to_le_bytes()),
        Value::U32(v) => out.extend(v.to_le_bytes()),
        Value::I32(v) => out.extend(v.to_le_bytes()),
        Value::F32(v) => out.extend(v.to_le_bytes()),
        Value::Bool(v) => out.push(u8::from(*v)),
        Value::String(s) => write_str(out, s),
        Value::Array(a) => write_array(out, a),
        Value::U64(v) => out.extend(v.to_le_bytes()),
        Value::I64(v) => out.extend(v.to_le_bytes()),
        Value::F64(v) => out.extend(v.to_le_bytes()),
    }
}

fn write_array(out: &mut Vec<u8>, array: &Array) {
    out.extend(array_type_id(array).to_le_bytes());
    out.extend((array.len() as u64).to_le_bytes());
    match array {
        Array::U8(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::I8(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::U16(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::I16(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::U32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::I32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::F32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::Bool(v) => v.iter().for_each(|x| out.push(u8::from(*x))),
        Array::String(v) => v.iter().for_each(|s| write_str(out, s)),
        Array::Array(v) => v.iter().for_each(|a| write_array(out, a)),
        Array::U64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::I64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::F64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
    }
}
