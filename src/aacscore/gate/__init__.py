"""The input gate: refuse what is not a scorable lateral lumbar film, and say exactly why.

``header`` reads the DICOM header's evidence on view and region, ``view`` classifies the image
(lateral lumbar or what else), ``field`` checks that L1-L4, their discs and the aortic band are on
the film, and ``quality`` scores how familiar the film is to the models.
"""
