package queue_test

import (
	"testing"

	"github.com/chronoq/chronoq/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }
