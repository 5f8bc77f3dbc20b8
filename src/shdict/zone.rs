//! A declared `lua_shared_dict` zone and its init callback.

use core::ffi::c_void;
use core::ptr::NonNull;

use nginx_sys::{
    ngx_int_t, ngx_shm_zone_t, ngx_slab_init, ngx_slab_pool_t, ngx_str_t, NGX_ERROR, NGX_OK,
};

use super::store::Store;

/// One `lua_shared_dict`, allocated from the configuration pool. nginx keeps a
/// pointer to it in `shm_zone->data`; the store inside is filled in when the
/// zone's memory is ready.
pub struct SharedZone {
    name: ngx_str_t,
    size: usize,
    store: Option<Store>,
    persist: Option<Persist>,
}

/// `lua_shared_dict_persist`: where the zone's snapshot lives and how often
/// it is saved.
#[derive(Debug, Clone, Copy)]
pub struct Persist {
    /// The snapshot file's full path (in the configuration pool).
    pub path: ngx_str_t,
    pub interval_ms: u64,
}

impl Persist {
    pub fn path(&self) -> &std::path::Path {
        use std::os::unix::ffi::OsStrExt;
        std::path::Path::new(std::ffi::OsStr::from_bytes(crate::nginx::str_bytes(
            &self.path,
        )))
    }
}

impl SharedZone {
    pub fn new(name: ngx_str_t, size: usize) -> SharedZone {
        SharedZone {
            name,
            size,
            store: None,
            persist: None,
        }
    }

    pub fn persist(&self) -> Option<&Persist> {
        self.persist.as_ref()
    }

    /// Makes the zone persistent; false when it is already.
    pub fn set_persist(&mut self, persist: Persist) -> bool {
        self.persist.replace(persist).is_none()
    }

    pub fn name(&self) -> &[u8] {
        crate::nginx::str_bytes(&self.name)
    }

    /// Configured size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The store, once the zone is initialised (always so in workers).
    pub fn store(&self) -> Option<Store> {
        self.store
    }
}

/// nginx's `ngx_shm_zone_init_pt`: lays out a new store, or adopts the one
/// in a zone reused across a reload (`previous` is then the old cycle's
/// `SharedZone`).
///
/// # Safety
/// Called by nginx with a zone whose `data` is a `SharedZone` and whose memory
/// starts with an initialised slab pool.
pub unsafe extern "C" fn init_shared_zone(
    shm_zone: *mut ngx_shm_zone_t,
    previous: *mut c_void,
) -> ngx_int_t {
    let outcome = std::panic::catch_unwind(|| {
        // SAFETY: per this function's contract.
        unsafe {
            let zone = &mut *(*shm_zone).data.cast::<SharedZone>();
            let Some(pool) = NonNull::new((*shm_zone).shm.addr.cast::<ngx_slab_pool_t>()) else {
                return NGX_ERROR as ngx_int_t;
            };
            if !previous.is_null() {
                if let Some(store) = Store::adopt(pool) {
                    zone.store = Some(store);
                    return NGX_OK as ngx_int_t;
                }
                // Laid out by an incompatible build: start the zone afresh.
                if let Some(log) = crate::nginx::Log::cycle() {
                    let mut line = b"lua_shared_dict zone \"".to_vec();
                    line.extend_from_slice(zone.name());
                    line.extend_from_slice(
                        b"\" was laid out by another version of the module: it starts empty",
                    );
                    log.write(nginx_sys::NGX_LOG_NOTICE as usize, &line);
                }
                ngx_slab_init(pool.as_ptr());
            }
            let mut log_ctx = b" in lua_shared_dict zone \"".to_vec();
            log_ctx.extend_from_slice(zone.name());
            log_ctx.push(b'"');
            match Store::create(pool, &log_ctx) {
                Some(store) => {
                    zone.store = Some(store);
                    // A fresh zone (first start, a new size): its snapshot,
                    // before init_by_lua runs. A kept one is newer.
                    super::persist::load(zone, store);
                    NGX_OK as ngx_int_t
                }
                None => NGX_ERROR as ngx_int_t,
            }
        }
    });
    outcome.unwrap_or(NGX_ERROR as ngx_int_t)
}
