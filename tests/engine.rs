//! Engine settings that reach libtorch's global state.

use editone::{Engine, EngineOptions};

#[test]
fn tf32_switch_reaches_libtorch_and_is_off_by_default() {
    let engine = Engine::get().unwrap();
    assert!(!engine.tf32(), "exact float32 is the default");
    let options = |tf32| EngineOptions { tf32, ..EngineOptions::default() };
    assert!(Engine::init(&options(true)).unwrap().tf32());
    assert!(!Engine::init(&options(false)).unwrap().tf32());
}
