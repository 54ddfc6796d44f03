//! The wgpu compute path: `shader.wgsl` run over batches, read back into host
//! memory.
//!
//! Two slots (output buffer + readback buffer each) alternate so the GPU computes
//! batch `i + 1` while the host copies batch `i` out of mapped memory. GPU memory is
//! bounded by `4 × 16 × max_batch` bytes plus the prefix table.

use std::sync::{Arc, mpsc};

use bytemuck::{Pod, Zeroable};

use super::{AddressSpace, Octets};
use crate::error::{Error, Result};
use crate::permutation::ROUNDS;

const WORKGROUP: u32 = 256;
const SLOTS: usize = 2;

/// Mirrors `Params` in shader.wgsl (std140-compatible: vec4s first, then u32s).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    start: [u32; 4],
    n: [u32; 4],
    keys0: [u32; 4],
    keys1: [u32; 4],
    count: u32,
    lo_bits: u32,
    hi_bits: u32,
    narrow: u32,
    num_prefixes: u32,
    pow2: u32,
    row_stride: u32,
    _pad: u32,
}

/// Mirrors `Entry` in shader.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Entry {
    start: [u32; 4],
    network: [u32; 4],
}

const _: () = assert!(ROUNDS == 4, "shader.wgsl hard-codes four rounds");

fn words(v: u128) -> [u32; 4] {
    [
        v as u32,
        (v >> 32) as u32,
        (v >> 64) as u32,
        (v >> 96) as u32,
    ]
}

struct InFlight {
    index: wgpu::SubmissionIndex,
    mapped: mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
}

struct Slot {
    out: wgpu::Buffer,
    readback: wgpu::Buffer,
    params: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

pub(crate) struct GpuGenerator {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipeline: wgpu::ComputePipeline,
    slots: Vec<Slot>,
    max_batch: usize,
    max_groups_x: u32,
    adapter_name: String,
}

impl GpuGenerator {
    /// Sets up the pipeline. With `hardware_only` (the `Auto` mode), only the
    /// primary backends are tried (no GL probing) and software adapters such as
    /// llvmpipe are refused: the rayon path beats them by far. `WGPU_BACKEND`
    /// overrides the backend choice either way.
    pub(crate) fn new(space: &AddressSpace, max_batch: usize, hardware_only: bool) -> Result<Self> {
        let _span = tracing::info_span!("gpu_init").entered();
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        if hardware_only {
            desc.backends = wgpu::Backends::PRIMARY;
        }
        // wgpu enables every WSI extension the loader offers, Wayland's included,
        // and Mesa's implicit device-select layer then asks libwayland for a
        // display, which prints an XDG_RUNTIME_DIR error on headless machines. No
        // descriptor setting avoids it; the process environment does
        // (`NODEVICE_SELECT=1`, set by the binary; see the README, "Vulkan noise").
        let instance = wgpu::Instance::new(desc.with_env());
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        }))
        .map_err(|e| Error::GpuUnavailable(format!("no wgpu adapter: {e}")))?;
        let info = adapter.get_info();
        let adapter_name = format!("{} / {:?}", info.name, info.backend);
        if hardware_only && info.device_type == wgpu::DeviceType::Cpu {
            return Err(Error::GpuUnavailable(format!(
                "only a software adapter ({adapter_name}); the CPU path is faster"
            )));
        }
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("widescan"),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::GpuUnavailable(format!("{adapter_name}: {e}")))?;
        // Errors are returned through error scopes; never let wgpu's default handler
        // panic the host application.
        device.on_uncaptured_error(Arc::new(|e| tracing::error!(error = %e, "wgpu error")));

        let per_buffer = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let max_batch = max_batch.min(usize::try_from(per_buffer / 16).unwrap_or(usize::MAX));
        let table_bytes = (space.networks().len() * std::mem::size_of::<Entry>()) as u64;
        if max_batch == 0 || table_bytes > per_buffer {
            return Err(Error::GpuUnavailable(format!(
                "{adapter_name}: buffer limit of {per_buffer} bytes is too small"
            )));
        }

        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("widescan generate"),
            source: wgpu::ShaderSource::Wgsl(include_str!("shader.wgsl").into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("widescan generate"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let entries: Vec<Entry> = space
            .targets()
            .starts()
            .iter()
            .zip(space.networks())
            .map(|(&s, &n)| Entry {
                start: words(s),
                network: words(n),
            })
            .collect();
        let table = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("widescan prefixes"),
            size: table_bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&table, 0, bytemuck::cast_slice(&entries));
        let layout = pipeline.get_bind_group_layout(0);
        let bytes = (max_batch * 16) as u64;
        let slots = (0..SLOTS)
            .map(|_| {
                let out = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("widescan out"),
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                });
                let readback = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("widescan readback"),
                    size: bytes,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                let params = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("widescan params"),
                    size: std::mem::size_of::<Params>() as u64,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("widescan generate"),
                    layout: &layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: params.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: table.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: out.as_entire_binding(),
                        },
                    ],
                });
                Slot {
                    out,
                    readback,
                    params,
                    bind_group,
                }
            })
            .collect();
        if let Some(e) = pollster::block_on(oom.pop()) {
            return Err(Error::GpuUnavailable(format!("{adapter_name}: {e}")));
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("pipeline setup on {adapter_name}: {e}")));
        }
        tracing::info!(adapter = %adapter_name, max_batch, "GPU generator ready");
        Ok(GpuGenerator {
            device,
            queue,
            pipeline,
            slots,
            max_batch,
            max_groups_x: limits.max_compute_workgroups_per_dimension.max(1),
            adapter_name,
        })
    }

    pub(crate) fn adapter_name(&self) -> &str {
        &self.adapter_name
    }

    /// Fills `out` with indices `start..`; the caller has checked the span.
    pub(crate) fn fill(
        &mut self,
        space: &AddressSpace,
        start: u128,
        out: &mut [Octets],
    ) -> Result<()> {
        let chunks: Vec<(u128, usize, usize)> = out
            .chunks(self.max_batch)
            .enumerate()
            .map(|(c, chunk)| {
                let off = c * self.max_batch;
                (start + off as u128, off, chunk.len())
            })
            .collect();
        // Slot, output offset, length, and the in-flight submission of the batch
        // submitted last; it is collected after the next one is submitted.
        let mut pending: Option<(usize, usize, usize, InFlight)> = None;
        for (c, &(first, off, len)) in chunks.iter().enumerate() {
            let slot = c % SLOTS;
            let flight = self.submit(space, slot, first, len)?;
            if let Some((pslot, poff, plen, pflight)) = pending.take() {
                self.collect(pslot, pflight, &mut out[poff..poff + plen])?;
            }
            pending = Some((slot, off, len, flight));
        }
        if let Some((pslot, poff, plen, pflight)) = pending {
            self.collect(pslot, pflight, &mut out[poff..poff + plen])?;
        }
        Ok(())
    }

    fn submit(
        &self,
        space: &AddressSpace,
        slot: usize,
        first: u128,
        len: usize,
    ) -> Result<InFlight> {
        let perm = space.permutation();
        let keys = perm.keys();
        let groups = (len as u32).div_ceil(WORKGROUP);
        let (gx, gy) = if groups <= self.max_groups_x {
            (groups, 1)
        } else {
            (self.max_groups_x, groups.div_ceil(self.max_groups_x))
        };
        let params = Params {
            start: words(first),
            n: words(perm.len()),
            keys0: [keys[0][0], keys[1][0], keys[2][0], keys[3][0]],
            keys1: [keys[0][1], keys[1][1], keys[2][1], keys[3][1]],
            count: len as u32,
            lo_bits: perm.lo_bits(),
            hi_bits: perm.hi_bits(),
            narrow: u32::from(perm.is_narrow()),
            num_prefixes: space.networks().len() as u32,
            pow2: u32::from(perm.is_power_of_two()),
            row_stride: gx * WORKGROUP,
            _pad: 0,
        };
        let s = &self.slots[slot];
        let bytes = (len * 16) as u64;
        self.queue
            .write_buffer(&s.params, 0, bytemuck::bytes_of(&params));
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("widescan"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("widescan generate"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &s.bind_group, &[]);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        encoder.copy_buffer_to_buffer(&s.out, 0, &s.readback, 0, bytes);
        let index = self.queue.submit([encoder.finish()]);
        let (tx, rx) = mpsc::channel();
        s.readback
            .map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
                // The receiver may be gone if fill() already failed; nothing to report then.
                let _ = tx.send(r);
            });
        Ok(InFlight { index, mapped: rx })
    }

    fn collect(&self, slot: usize, flight: InFlight, out: &mut [Octets]) -> Result<()> {
        let s = &self.slots[slot];
        let bytes = (out.len() * 16) as u64;
        // Wait for this batch only, so the next batch keeps the GPU busy meanwhile.
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(flight.index),
                timeout: None,
            })
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
        flight
            .mapped
            .recv()
            .map_err(|_| Error::Gpu("readback mapping was dropped".into()))?
            .map_err(|e| Error::Gpu(format!("mapping the readback buffer: {e}")))?;
        {
            let view = s
                .readback
                .get_mapped_range(0..bytes)
                .map_err(|e| Error::Gpu(format!("reading the readback buffer: {e}")))?;
            let src: &[Octets] = bytemuck::cast_slice(&view);
            out.copy_from_slice(src);
        }
        s.readback.unmap();
        Ok(())
    }
}
