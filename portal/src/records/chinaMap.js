// The China map of the callers' provinces: AntV's china-geojson (MIT) outlines, named
// with the short names (广东, 内蒙古) sihai's region table gives callers. Registered
// with ECharts once, when the analytics page first loads.
import { registerMap } from './echarts.js'
import china from 'china-geojson/src/geojson/china.json'

export const MAP = 'china'
export const PROVINCES = china.features.map((f) => f.properties.name).filter((n) => n !== '南海诸岛')

let registered = false
export function registerChina() {
  if (!registered) registerMap(MAP, china)
  registered = true
}
