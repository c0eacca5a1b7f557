;; The backward pass of relu(conv(x) + bias) up to the convolution, in WebAssembly SIMD, on the tfjs
;; wasm heap: masks the output gradient with the relu's step and sums it per channel for the bias.
;; Loaded by ../simd-relu-bias-grad.ts; assembled by scripts/assemble-wat.mjs (wabt) at build time.
;;
;; Memory layout (byte addresses into the imported heap, env.memory; all float32):
;;   dy       the gradient of the layer's output [images, pixels, c]; a pixel is $pixelBytes = 4*c
;;            bytes (a multiple of 16).
;;   y        the layer's output relu(...) [images, pixels, c], saved by the forward pass.
;;   out      the gradient before the relu [images, pixels, c]:  out = dy * step(y), where step(y)
;;            is 1 for y > 0, NaN for a NaN y and 0 otherwise, exactly tfjs' composed relu gradient
;;            (so a NaN in y or dy still reaches out; 0 * dy keeps dy's sign as tfjs' Multiply does).
;;   partial  [images, c]: per image, the float32 sum of out over its pixels, in pixel order. The
;;            caller adds the images' partial sums in float64 for the bias gradient.
(module
  (import "env" "memory" (memory 1))

  (func (export "reluBiasGrad")
    (param $dy i32) (param $y i32) (param $out i32) (param $partial i32)
    (param $images i32) (param $pixels i32)
    (param $pixelBytes i32)   ;; 4 * c, a multiple of 16
    (local $b i32) (local $p i32)
    (local $d i32)            ;; byte offset of the current 4 channels within a pixel
    (local $at i32)           ;; byte offset of the current pixel from dy / y / out
    (local $yv v128) (local $g v128) (local $s v128)
    (local $one v128) (local $zero v128)

    (local.set $one (f32x4.splat (f32.const 1)))
    (local.set $zero (f32x4.splat (f32.const 0)))
    (local.set $at (i32.const 0))

;; for (b = 0; b < images; b++)
    (local.set $b (i32.const 0))
    (block $bDone (loop $bLoop
      (br_if $bDone (i32.ge_u (local.get $b) (local.get $images)))

      ;; partial[b, :] = 0
      (local.set $d (i32.const 0))
      (block $zDone (loop $zLoop
        (br_if $zDone (i32.ge_u (local.get $d) (local.get $pixelBytes)))
        (v128.store (i32.add (local.get $partial) (local.get $d)) (local.get $zero))
        (local.set $d (i32.add (local.get $d) (i32.const 16)))
        (br $zLoop)))

      ;; for (p = 0; p < pixels; p++); the channel groups of a pixel are independent sums, so
      ;; their adds overlap (walking one group's pixels with its sum in a register measured slower)
      (local.set $p (i32.const 0))
      (block $pDone (loop $pLoop
        (br_if $pDone (i32.ge_u (local.get $p) (local.get $pixels)))

        ;; for (d = 0; d < pixelBytes; d += 16)
        (local.set $d (i32.const 0))
        (block $cDone (loop $cLoop
          (br_if $cDone (i32.ge_u (local.get $d) (local.get $pixelBytes)))

          (local.set $yv (v128.load (i32.add (local.get $y) (i32.add (local.get $at) (local.get $d)))))
          ;; step(y): 1 where y > 0; y itself (a NaN) where y != y; 0 elsewhere
          (local.set $s
            (v128.or
              (v128.and (f32x4.gt (local.get $yv) (local.get $zero)) (local.get $one))
              (v128.and (f32x4.ne (local.get $yv) (local.get $yv)) (local.get $yv))))
          (local.set $g
            (f32x4.mul (v128.load (i32.add (local.get $dy) (i32.add (local.get $at) (local.get $d)))) (local.get $s)))
          (v128.store (i32.add (local.get $out) (i32.add (local.get $at) (local.get $d))) (local.get $g))
          (v128.store (i32.add (local.get $partial) (local.get $d))
            (f32x4.add (v128.load (i32.add (local.get $partial) (local.get $d))) (local.get $g)))

          (local.set $d (i32.add (local.get $d) (i32.const 16)))
          (br $cLoop)))

        (local.set $at (i32.add (local.get $at) (local.get $pixelBytes)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $pLoop)))

      (local.set $partial (i32.add (local.get $partial) (local.get $pixelBytes)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bLoop)))
  )
)
