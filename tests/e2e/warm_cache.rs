//! warm_cache
