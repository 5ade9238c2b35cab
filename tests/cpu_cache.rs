//! The engine's cache of large CPU buffers (`EngineOptions::cpu_cache_mib`):
//! a freed activation-sized buffer is handed out again instead of being
//! mapped afresh and page-faulted in (issue 9). One test, alone in its
//! process, since the cache and the fault counter are process-wide.

use editone::{Engine, EngineOptions};
use tch::{Device, Kind, Tensor};

/// Minor page faults of this process so far (/proc/self/stat, field 10).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    // The command name may hold spaces; the fields after its ')' do not.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[7].parse().unwrap()
}

/// Makes and frees one 64 MiB tensor, then makes another: whether it got
/// the same memory, and the page faults its making and filling took.
fn second_buffer() -> (bool, u64) {
    let make = || Tensor::ones([16 << 20], (Kind::Float, Device::Cpu));
    let first = make();
    let address = first.data_ptr();
    drop(first);
    let before = minor_faults();
    let second = make();
    (second.data_ptr() == address, minor_faults() - before)
}

#[test]
fn freed_large_buffers_are_reused_unless_the_cache_is_off() {
    let options = |cpu_cache_mib| EngineOptions { cpu_cache_mib, ..EngineOptions::default() };
    Engine::init(&options(editone::engine::DEFAULT_CPU_CACHE_MIB)).unwrap();
    let (reused, cached_faults) = second_buffer();
    Engine::init(&options(0)).unwrap();
    let (_, uncached_faults) = second_buffer();
    eprintln!("64 MiB buffer: {cached_faults} page faults from the cache, {uncached_faults} without it");
    assert!(reused, "the cache handed out other memory");
    assert!(cached_faults < 256, "{cached_faults} page faults for a reused buffer");
    // 16384 with 4 KiB pages; 32 where transparent huge pages are always on.
    assert!(uncached_faults > 4 * cached_faults + 16, "{uncached_faults} page faults without the cache");
}
