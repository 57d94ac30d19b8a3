// The portal is built into static files that the daemon embeds in its binary
// (crates/portal/build.rs) and serves from the admin API's listener. Every asset but
// index.html has a content hash in its name, so the daemon serves them as immutable; each
// compressible file also gets a gzip twin, which the daemon sends to browsers that accept
// it (ECharts and Element Plus are most of the bytes, and compress to a quarter).
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import { gzipSync } from 'node:zlib'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

function gzipTwins() {
  // After the files are written: Vite finishes some chunks (its preload helper) in its own
  // generateBundle, so only the written files are final.
  return {
    name: 'sihai-gzip-twins',
    apply: 'build',
    enforce: 'post',
    writeBundle(options, bundle) {
      for (const fileName of Object.keys(bundle)) {
        if (!/\.(js|css|html|json|svg)$/.test(fileName)) continue
        const path = join(options.dir, fileName)
        const bytes = readFileSync(path)
        if (bytes.length < 1024) continue
        writeFileSync(`${path}.gz`, gzipSync(bytes, { level: 9 }))
      }
    },
  }
}

export default defineConfig({
  plugins: [vue(), gzipTwins()],
  base: '/',
  build: {
    // The daemon's build names its own output directory (--outDir); this is for `npm run build`.
    outDir: 'dist',
    chunkSizeWarningLimit: 2048,
    rollupOptions: {
      output: {
        manualChunks: {
          echarts: ['echarts'],
          'element-plus': ['element-plus'],
        },
      },
    },
  },
  server: {
    // `npm run dev` next to a daemon on the sample configuration: the API is proxied.
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
  test: {
    include: ['tests/**/*.test.js'],
    environment: 'node',
  },
})
