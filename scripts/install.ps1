# lab7's installer for Windows (PowerShell 5.1, as Windows 10 and 11 ship it, or PowerShell 7):
# finds the Windows archive in a release (the folder or URL `make dist` output was published to),
# checks its SHA-256 against the release's SHA256SUMS, and puts lab7.exe in
# %LOCALAPPDATA%\lab7\bin (or $env:LAB7_INSTALL_DIR), added to the user's PATH. No administrator.
#
#   & ([scriptblock]::Create((irm RELEASE_URL/install.ps1))) RELEASE_URL
#   powershell -ExecutionPolicy Bypass -File install.ps1 RELEASE_URL
param([string]$Release = $env:LAB7_RELEASE)
$ErrorActionPreference = 'Stop'
function Fail($msg) { Write-Error "lab7 install: $msg"; exit 1 }

if (-not $Release) { Fail 'no release given: install.ps1 RELEASE_URL (the folder with SHA256SUMS and the lab7 archives)' }
$Release = $Release.TrimEnd('/')
$arch = $env:PROCESSOR_ARCHITECTURE
# An x86_64 build runs on arm64 Windows 11 too, under its emulation.
if ($arch -ne 'AMD64' -and $arch -ne 'ARM64') { Fail "no lab7 build for the CPU $arch (there is x86_64)" }
$target = 'x86_64-pc-windows-gnu'
$dir = if ($env:LAB7_INSTALL_DIR) { $env:LAB7_INSTALL_DIR } else { Join-Path $env:LOCALAPPDATA 'lab7\bin' }

$tmp = Join-Path ([IO.Path]::GetTempPath()) ("lab7-install-" + [guid]::NewGuid())
New-Item -ItemType Directory -Path $tmp | Out-Null
try {
    # Windows PowerShell 5.1 may default to TLS 1.0, which release hosts refuse.
    [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
    $sums = Join-Path $tmp 'SHA256SUMS'
    Invoke-WebRequest -UseBasicParsing -Uri "$Release/SHA256SUMS" -OutFile $sums
    $line = Get-Content $sums | Where-Object { $_ -match "-$target\.zip$" } | Select-Object -First 1
    if (-not $line) { Fail "the release at $Release has no archive for $target" }
    $want, $file = $line -split '\s+\*?', 2
    Write-Host "lab7 install: downloading $file"
    $zip = Join-Path $tmp $file
    Invoke-WebRequest -UseBasicParsing -Uri "$Release/$file" -OutFile $zip
    $got = (Get-FileHash -Algorithm SHA256 $zip).Hash.ToLower()
    if ($got -ne $want.ToLower()) { Fail "${file}: SHA-256 $got, but SHA256SUMS says $want - the download is damaged or not the release's; nothing was installed" }
    Expand-Archive -Path $zip -DestinationPath $tmp
    New-Item -ItemType Directory -Force -Path $dir | Out-Null
    $unpacked = Join-Path $tmp ($file -replace '\.zip$', '')
    Copy-Item -Force (Join-Path $unpacked 'lab7.exe') (Join-Path $dir 'lab7.exe')
    $userPath = [Environment]::GetEnvironmentVariable('Path', 'User')
    if (-not ($userPath -split ';' -contains $dir)) {
        $newPath = if ($userPath) { "$userPath;$dir" } else { $dir }
        [Environment]::SetEnvironmentVariable('Path', $newPath, 'User')
        Write-Host "lab7 install: $dir added to your PATH (open a new terminal to use it)"
    }
    $version = & (Join-Path $dir 'lab7.exe') --version
    Write-Host "lab7 install: installed $version in $dir"
} finally {
    Remove-Item -Recurse -Force $tmp -ErrorAction SilentlyContinue
}
