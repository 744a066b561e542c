//! GGUF headers: `GgufFile::from_bytes` (the parser `GgufFile::open` uses) over the metadata
//! and the tensor directory, then every accessor the model and tokenizer loaders call.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voxd::llm::gguf::GgufFile;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes("fuzz.gguf", data.to_vec()) else {
        return;
    };
    // The data section starts inside the file once there is data (a file without tensors may
    // end before the padding that would precede it).
    if !file.tensors().is_empty() {
        assert!(file.data_offset() <= file.file_len());
    }
    for (key, value) in file.metadata_entries() {
        assert!(
            file.metadata(key).is_some(),
            "metadata key {key:?} not found by name"
        );
        let _ = (
            value.value_type(),
            file.get_str_array_opt(key),
            file.get_f32_array_opt(key),
        );
        let _ = (
            file.get_i32_array_opt(key),
            file.get_u32_opt(key),
            file.get_f32_opt(key),
        );
        let _ = (
            file.get_bool_opt(key),
            file.get_str_opt(key),
            file.get_i64(key),
        );
    }
    let _ = file.architecture();
    for tensor in file.tensors() {
        // The directory's promise: each tensor's data lies inside the file, whole.
        assert_eq!(
            file.tensor_bytes(tensor).len() as u64,
            tensor.n_bytes(),
            "tensor {:?}",
            tensor.name()
        );
        assert!(file.tensor(tensor.name()).is_some());
        let _ = (
            tensor.shape(),
            tensor.n_rows(),
            tensor.row_bytes(),
            tensor.n_elements(),
        );
    }
});
