// The parts of ECharts the records pages draw, registered once when this module is
// first imported (echarts/core: the bundle carries these, not all of ECharts). The map
// chart must be registered before a map is (registerMap is the map chart's).
import { use } from 'echarts/core'
import { BarChart, LineChart, HeatmapChart, MapChart } from 'echarts/charts'
import { GridComponent, TooltipComponent, LegendComponent, VisualMapComponent } from 'echarts/components'
import { CanvasRenderer } from 'echarts/renderers'

use([BarChart, LineChart, HeatmapChart, MapChart, GridComponent, TooltipComponent, LegendComponent, VisualMapComponent, CanvasRenderer])

export { init, registerMap } from 'echarts/core'
