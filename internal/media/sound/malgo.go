//go:build soundcard

package sound

import (
	"encoding/binary"
	"fmt"

	"github.com/gen2brain/malgo"
)

// backends are miniaudio's real sound systems, in its order of preference;
// each is tried where it exists. BackendNull, a device that plays nothing
// and records silence, is left out on purpose: no device must say so.
var backends = []malgo.Backend{
	malgo.BackendWasapi, malgo.BackendDsound, malgo.BackendWinmm,
	malgo.BackendCoreaudio,
	malgo.BackendSndio, malgo.BackendAudio4, malgo.BackendOss,
	malgo.BackendPulseaudio, malgo.BackendAlsa, malgo.BackendJack,
	malgo.BackendAaudio, malgo.BackendOpensl,
}

type miniaudio struct {
	ctx *malgo.AllocatedContext
}

// openSystem loads the first sound system that works and checks that it
// has a default capture and a default playback device, by opening them.
func openSystem() (system, error) {
	quietALSA()
	ctx, err := malgo.InitContext(backends, malgo.ContextConfig{}, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: no sound system found, such as PulseAudio, PipeWire, ALSA, Core Audio or WASAPI (%v)", ErrNoDevice, err)
	}
	m := &miniaudio{ctx: ctx}
	for _, kind := range []malgo.DeviceType{malgo.Capture, malgo.Playback} {
		dev, err := m.initDevice(kind, func(_, _ []byte, _ uint32) {})
		if err != nil {
			m.close()
			return nil, err
		}
		dev.Uninit()
	}
	return m, nil
}

func (m *miniaudio) close() error {
	err := m.ctx.Uninit()
	m.ctx.Free()
	return err
}

func kindName(kind malgo.DeviceType) string {
	if kind == malgo.Capture {
		return "capture (microphone)"
	}
	return "playback (speaker)"
}

// initDevice opens the default device of kind: 16-bit mono at the
// device's own rate, 10 ms periods.
func (m *miniaudio) initDevice(kind malgo.DeviceType, data malgo.DataProc) (*malgo.Device, error) {
	cfg := malgo.DefaultDeviceConfig(kind)
	cfg.Capture.Format, cfg.Capture.Channels = malgo.FormatS16, 1
	cfg.Playback.Format, cfg.Playback.Channels = malgo.FormatS16, 1
	cfg.SampleRate = 0 // the device's own
	cfg.PeriodSizeInMilliseconds = periodMs
	cfg.Periods = 2
	cfg.PerformanceProfile = malgo.LowLatency
	dev, err := malgo.InitDevice(m.ctx.Context, cfg, malgo.DeviceCallbacks{Data: data})
	if err != nil {
		return nil, fmt.Errorf("%w: cannot open the default %s device (%v)", ErrNoDevice, kindName(kind), err)
	}
	return dev, nil
}

type maDevice struct{ dev *malgo.Device }

func (d maDevice) rate() int { return int(d.dev.SampleRate()) }

func (d maDevice) close() error {
	d.dev.Uninit() // stops it and waits for its callback to return
	return nil
}

func (m *miniaudio) start(kind malgo.DeviceType, data malgo.DataProc) (device, error) {
	dev, err := m.initDevice(kind, data)
	if err != nil {
		return nil, err
	}
	if err := dev.Start(); err != nil {
		dev.Uninit()
		return nil, fmt.Errorf("starting the %s device: %w", kindName(kind), err)
	}
	return maDevice{dev}, nil
}

func (m *miniaudio) openCapture(push func([]int16)) (device, error) {
	var pcm []int16
	return m.start(malgo.Capture, func(_, in []byte, frames uint32) {
		pcm = pcm[:0]
		for i := 0; i+1 < len(in) && len(pcm) < int(frames); i += 2 {
			pcm = append(pcm, int16(binary.NativeEndian.Uint16(in[i:])))
		}
		push(pcm)
	})
}

func (m *miniaudio) openPlayback(pull func([]int16)) (device, error) {
	var pcm []int16
	return m.start(malgo.Playback, func(out, _ []byte, frames uint32) {
		n := min(int(frames), len(out)/2)
		if cap(pcm) < n {
			pcm = make([]int16, n)
		}
		pcm = pcm[:n]
		pull(pcm)
		for i, s := range pcm {
			binary.NativeEndian.PutUint16(out[2*i:], uint16(s))
		}
	})
}
