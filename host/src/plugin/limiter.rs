//! What one plugin instance may allocate in the host, counted over the
//! whole store: all its linear memories together (not each, as wasmtime's
//! `StoreLimits` counts), all its table elements together, and how many
//! instances, tables and memories it may create. Growing past a limit traps
//! (wasmtime calls the limiter before it allocates, creation included), so
//! a plugin that asks for 2^28 table elements costs the host nothing.

use wasmtime::ResourceLimiter;

/// Table elements one instance may hold in all its tables (wasmtime keeps
/// a pointer or two per element: at most a few MiB). Rust components use a
/// few hundred.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Core instances, tables and memories one component may create: a Rust
/// `wasm32-wasip2` component has a handful of each.
const MAX_INSTANCES: usize = 16;
const MAX_TABLES: usize = 16;
const MAX_MEMORIES: usize = 4;

/// The limits of one store, and what it holds so far.
pub(crate) struct PluginLimiter {
    memory_cap: usize,
    memory_used: usize,
    table_used: usize,
}

impl PluginLimiter {
    /// `memory_cap`: bytes of linear memory for all memories together.
    pub(crate) fn new(memory_cap: usize) -> Self {
        PluginLimiter { memory_cap, memory_used: 0, table_used: 0 }
    }
}

impl ResourceLimiter for PluginLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = (self.memory_used - current.min(self.memory_used)).saturating_add(desired);
        if total > self.memory_cap || maximum.is_some_and(|m| desired > m) {
            // The text `trap_kind` reads as a memory limit.
            wasmtime::bail!("memory limit: growing to {total} bytes in all memories (at most {})", self.memory_cap);
        }
        self.memory_used = total;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error.context("memory limit: the host could not grow the memory"))
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = (self.table_used - current.min(self.table_used)).saturating_add(desired);
        if total > MAX_TABLE_ELEMENTS || maximum.is_some_and(|m| desired > m) {
            wasmtime::bail!("table limit: growing to {total} elements in all tables (at most {MAX_TABLE_ELEMENTS})");
        }
        self.table_used = total;
        Ok(true)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error.context("table limit: the host could not grow the table"))
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_and_tables_are_counted_together() {
        let mut l = PluginLimiter::new(32 << 20);
        assert!(l.memory_growing(0, 20 << 20, None).unwrap());
        // A second memory of 20 MiB would make 40: refused, as a trap.
        let err = l.memory_growing(0, 20 << 20, None).unwrap_err();
        assert!(err.to_string().contains("memory limit"), "{err}");
        assert!(l.memory_growing(20 << 20, 30 << 20, None).unwrap(), "the first may grow to the cap");
        assert!(l.memory_growing(0, 4 << 20, None).is_err());
        assert!(l.table_growing(0, 60_000, None).unwrap());
        assert!(l.table_growing(0, 60_000, None).unwrap_err().to_string().contains("table limit"));
        assert!(l.table_growing(60_000, 1 << 28, None).is_err(), "one huge table.grow");
        assert!(l.table_growing(0, 10, Some(5)).is_err(), "past the table's own maximum");
    }
}
