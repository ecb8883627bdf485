from callengine.cli import main

raise SystemExit(main())
